package auth

import (
	"github.com/parleyhq/parley/id"
)

// checkMember is the m.room.member rule (5 in v1–5 and v12, 4 in v6–11).
func (c *checker) checkMember() error {
	ev, n := c.ev, c.n
	sk := ev.StateKey()
	if sk == nil {
		return deny(sub(n.member, 1), "m.room.member has no state_key")
	}
	m, err := ParseMember(ev.Content())
	if err != nil {
		return deny(sub(n.member, 1), "m.room.member has no membership")
	}
	target := id.UserID(*sk)
	if c.rv.RestrictedJoins && m.HasJoinAuthorised {
		via, err := id.ParseUserID(string(m.JoinAuthorisedViaUsersServer))
		if err != nil {
			return deny(sub(n.member, 2, 1), "join_authorised_via_users_server is not a user id")
		}
		if s, ok := ev.(ServerSigned); ok && !s.SignedBy(via.Server()) {
			return deny(sub(n.member, 2, 1), "event is not signed by the authorising user's server")
		}
	}
	switch m.Membership {
	case Join:
		return c.checkJoin(m, target)
	case Invite:
		return c.checkInvite(m, target)
	case Leave:
		return c.checkLeave(target)
	case Ban:
		return c.checkBan(target)
	case Knock:
		if c.rv.Knocking {
			return c.checkKnock(target)
		}
	}
	return denyf(n.unknownMembership(c.rv), "unknown membership %q", m.Membership)
}

func (c *checker) checkJoin(m *Member, target id.UserID) error {
	ev, n := c.ev, c.n
	if prev := ev.PrevEventIDs(); len(prev) == 1 && prev[0] == c.create.EventID() && target == c.cc.Creator {
		return nil
	}
	if ev.Sender() != target {
		return deny(n.join(2), "sender does not match state_key")
	}
	current := membershipOf(c.state, target)
	if current == Ban {
		return deny(n.join(3), "sender is banned")
	}
	rule := joinRuleOf(c.state)
	if rule == JoinInvite || c.rv.Knocking && rule == JoinKnock {
		if current == Invite || current == Join {
			return nil
		}
		return deny(n.join(4), "join rule is "+string(rule)+" and sender is not invited")
	}
	if c.rv.RestrictedJoins && rule == JoinRestricted || c.rv.KnockRestricted && rule == JoinKnockRestricted {
		if current == Join || current == Invite {
			return nil
		}
		via := m.JoinAuthorisedViaUsersServer
		if !m.HasJoinAuthorised || membershipOf(c.state, via) != Join {
			return deny(n.join(5, 2), "join_authorised_via_users_server is not a joined member")
		}
		pl, err := c.powerLevels()
		if err != nil {
			return err
		}
		if pl.UserLevel(via) < pl.Invite {
			return deny(n.join(5, 2), "join_authorised_via_users_server may not invite")
		}
		return nil
	}
	if rule == JoinPublic {
		return nil
	}
	return denyf(n.joinOtherwise(), "join rule %q does not allow joining", rule)
}

func (c *checker) checkInvite(m *Member, target id.UserID) error {
	n := c.n
	if m.ThirdPartyInvite != nil {
		return c.checkThirdPartyInvite(m, target)
	}
	if membershipOf(c.state, c.ev.Sender()) != Join {
		return deny(n.invite(2), "sender is not joined to the room")
	}
	if t := membershipOf(c.state, target); t == Join || t == Ban {
		return denyf(n.invite(3), "target's membership is %s", t)
	}
	pl, err := c.powerLevels()
	if err != nil {
		return err
	}
	if pl.UserLevel(c.ev.Sender()) >= pl.Invite {
		return nil
	}
	return deny(n.invite(5), "sender's power level is below the invite level")
}

func (c *checker) checkLeave(target id.UserID) error {
	n, sender := c.n, c.ev.Sender()
	if sender == target {
		switch membershipOf(c.state, target) {
		case Invite, Join:
			return nil
		case Knock:
			if c.rv.Knocking {
				return nil
			}
		}
		return deny(n.leave(1), "user is not invited, joined or knocking")
	}
	if membershipOf(c.state, sender) != Join {
		return deny(n.leave(2), "sender is not joined to the room")
	}
	pl, err := c.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := pl.UserLevel(sender)
	if membershipOf(c.state, target) == Ban && senderLevel < pl.Ban {
		return deny(n.leave(3), "sender's power level is below the ban level and target is banned")
	}
	if senderLevel >= pl.Kick && pl.UserLevel(target) < senderLevel {
		return nil
	}
	return deny(n.leave(5), "sender may not kick the target")
}

func (c *checker) checkBan(target id.UserID) error {
	n, sender := c.n, c.ev.Sender()
	if membershipOf(c.state, sender) != Join {
		return deny(n.ban(1), "sender is not joined to the room")
	}
	pl, err := c.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := pl.UserLevel(sender)
	if senderLevel >= pl.Ban && pl.UserLevel(target) < senderLevel {
		return nil
	}
	return deny(n.ban(3), "sender may not ban the target")
}

func (c *checker) checkKnock(target id.UserID) error {
	n := c.n
	rule := joinRuleOf(c.state)
	if rule != JoinKnock && !(c.rv.KnockRestricted && rule == JoinKnockRestricted) {
		return denyf(n.knock(1), "join rule %q does not allow knocking", rule)
	}
	if c.ev.Sender() != target {
		return deny(n.knock(2), "sender does not match state_key")
	}
	switch membershipOf(c.state, target) {
	case Ban, Invite, Join:
		return deny(n.knock(4), "sender is banned, invited or joined")
	}
	return nil
}
