package auth

import (
	"errors"
	"slices"
)

// checkPowerLevels is the m.room.power_levels rule (10 in v1–5 and v12,
// 9 in v6–11): the new content must be well formed, and a sender may only
// change levels that are, and stay, within its own power.
func (c *checker) checkPowerLevels(senderLevel int64) error {
	n := c.n
	next, err := ParsePowerLevels(c.rv, c.ev.Content())
	if err != nil {
		var pe *PowerLevelsError
		errors.As(err, &pe)
		switch {
		case pe != nil && c.rv.IntegerPowerLevels && slices.Contains(plKeys[:], pe.Property):
			return deny(sub(n.pl, 1), err.Error())
		case pe != nil && c.rv.IntegerPowerLevels && (pe.Property == "events" || pe.Property == "notifications"):
			return deny(sub(n.pl, 2), err.Error())
		}
		return deny(n.plRule(1), err.Error())
	}
	if n.plCreators {
		for u := range next.Users {
			if slices.Contains(c.creators, u) {
				return denyf(sub(n.pl, 4), "users lists the room creator %s", u)
			}
		}
	}
	if c.state.StateEvent(TypePowerLevels, "") == nil {
		return nil
	}
	cur, err := c.powerLevels()
	if err != nil {
		return err
	}
	for i, k := range plKeys {
		oldV, newV := *cur.field(i), *next.field(i)
		if cur.present[i] == next.present[i] && (!cur.present[i] || oldV == newV) {
			continue
		}
		if cur.present[i] && oldV > senderLevel {
			return denyf(n.plRule(3, 1), "current %s is above the sender's power level", k)
		}
		if next.present[i] && newV > senderLevel {
			return denyf(n.plRule(3, 2), "new %s is above the sender's power level", k)
		}
	}
	maps := [][2]map[string]int64{{cur.Events, next.Events}}
	if c.rv.NotificationsPowerLevels {
		maps = append(maps, [2]map[string]int64{cur.Notifications, next.Notifications})
	}
	for _, m := range maps {
		for k, oldV := range m[0] {
			if newV, ok := m[1][k]; (!ok || newV != oldV) && oldV > senderLevel {
				return denyf(n.plRule(4, 1), "current level of %q is above the sender's power level", k)
			}
		}
	}
	for _, m := range maps {
		for k, newV := range m[1] {
			if oldV, ok := m[0][k]; (!ok || newV != oldV) && newV > senderLevel {
				return denyf(n.plRule(5, 1), "new level of %q is above the sender's power level", k)
			}
		}
	}
	sender := c.ev.Sender()
	for u, oldV := range cur.Users {
		if newV, ok := next.Users[u]; (!ok || newV != oldV) && u != sender && oldV >= senderLevel {
			return denyf(n.plRule(6, 1), "may not change the level of %s, which is not below the sender's", u)
		}
	}
	for u, newV := range next.Users {
		if oldV, ok := cur.Users[u]; (!ok || newV != oldV) && newV > senderLevel {
			return denyf(n.plRule(7, 1), "may not give %s a level above the sender's", u)
		}
	}
	return nil
}
