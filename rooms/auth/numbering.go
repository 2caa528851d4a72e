package auth

import (
	"strconv"

	"github.com/parleyhq/parley/rooms/roomversion"
)

// numbering gives the spec's rule numbers for one room version. The rule
// list is the same idea in every version, but rules were inserted and
// removed over time (m.room.aliases gone in v6, join_authorised_via_users_server
// in v8, integer checks in v10, the room id rule in v12), so the numbers a
// rejection cites differ: "sender is banned" is 5.2.3 in v1, 4.2.3 in v6,
// 4.3.3 in v8 and 5.3.3 in v12.
type numbering struct {
	authEvents, federate, aliases, member string
	joined, tpi, required, stateKey, pl   string
	redaction                             string
	memberShift                           int // 1 from v8 (rule x.2 join_authorised_via_users_server)
	plShift                               int // 2 from v10 (integer checks), 3 in v12 (creators)
	plCreators                            bool
}

func numberingFor(rv roomversion.Version) numbering {
	n := numbering{}
	top := func(v1 int) string { return strconv.Itoa(v1) }
	switch {
	case rv.CreateEventDefinesRoomID: // v12: rule 2 inserted, aliases rule gone
		n.authEvents, n.federate = "3", "4"
		n.member, n.joined, n.tpi, n.required, n.stateKey, n.pl = top(5), top(6), top(7), top(8), top(9), top(10)
	case rv.SpecialCaseAliases: // v1–5
		n.authEvents, n.federate, n.aliases = "2", "3", "4"
		n.member, n.joined, n.tpi, n.required, n.stateKey, n.pl = top(5), top(6), top(7), top(8), top(9), top(10)
		if rv.EventFormat == roomversion.FormatV1 {
			n.redaction = "11"
		}
	default: // v6–11
		n.authEvents, n.federate = "2", "3"
		n.member, n.joined, n.tpi, n.required, n.stateKey, n.pl = top(4), top(5), top(6), top(7), top(8), top(9)
	}
	if rv.RestrictedJoins {
		n.memberShift = 1
	}
	if rv.IntegerPowerLevels {
		n.plShift = 2
	}
	if rv.CreateEventDefinesRoomID {
		n.plShift = 3
		n.plCreators = true
	}
	return n
}

func sub(parent string, parts ...int) string {
	s := parent
	for _, p := range parts {
		s += "." + strconv.Itoa(p)
	}
	return s
}

// Membership sub-rule numbers: x.2 is join_authorised_via_users_server from
// v8, which pushes the membership values down by one.
func (n numbering) join(parts ...int) string {
	return sub(n.member, append([]int{2 + n.memberShift}, parts...)...)
}
func (n numbering) invite(parts ...int) string {
	return sub(n.member, append([]int{3 + n.memberShift}, parts...)...)
}
func (n numbering) leave(parts ...int) string {
	return sub(n.member, append([]int{4 + n.memberShift}, parts...)...)
}
func (n numbering) ban(parts ...int) string {
	return sub(n.member, append([]int{5 + n.memberShift}, parts...)...)
}
func (n numbering) knock(parts ...int) string {
	return sub(n.member, append([]int{6 + n.memberShift}, parts...)...)
}

// unknownMembership is the last membership sub-rule: after knock from v7.
func (n numbering) unknownMembership(rv roomversion.Version) string {
	k := 6 + n.memberShift
	if rv.Knocking {
		k++
	}
	return sub(n.member, k)
}

// joinOtherwise comes after the restricted sub-rule from v8.
func (n numbering) joinOtherwise() string { return n.join(6 + n.memberShift) }

// plRule numbers the power level sub-rules by their v1 position (1 users
// check, 2 no previous event, 3 top-level alterations, 4 events removed or
// changed, 5 events added or changed, 6 users removed or changed, 7 users
// added or changed); the v10 integer checks and the v12 creators check move
// them.
func (n numbering) plRule(v1 int, parts ...int) string {
	k := v1 + n.plShift
	if n.plCreators && v1 == 1 {
		k = v1 + 2 // the users check stays 10.3 in v12; 10.4 is new
	}
	return sub(n.pl, append([]int{k}, parts...)...)
}
