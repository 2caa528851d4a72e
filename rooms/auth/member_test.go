package auth_test

import (
	"fmt"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

// Rule numbers of the membership rules as each version's page numbers
// them, written out per version range.
func memberRule(k string) string { return fmt.Sprintf("1-5:5.%[1]s 6-11:4.%[1]s 12:5.%[1]s", k) }
func joinRule(k string) string {
	return fmt.Sprintf("1-5:5.2.%[1]s 6-7:4.2.%[1]s 8-11:4.3.%[1]s 12:5.3.%[1]s", k)
}
func restrictedRule(k string) string { return fmt.Sprintf("8-11:4.3.5.%[1]s 12:5.3.5.%[1]s", k) }
func inviteRule(k string) string {
	return fmt.Sprintf("1-5:5.3.%[1]s 6-7:4.3.%[1]s 8-11:4.4.%[1]s 12:5.4.%[1]s", k)
}
func leaveRule(k string) string {
	return fmt.Sprintf("1-5:5.4.%[1]s 6-7:4.4.%[1]s 8-11:4.5.%[1]s 12:5.5.%[1]s", k)
}
func banRule(k string) string {
	return fmt.Sprintf("1-5:5.5.%[1]s 6-7:4.5.%[1]s 8-11:4.6.%[1]s 12:5.6.%[1]s", k)
}
func knockRule(k string) string { return fmt.Sprintf("7:4.6.%[1]s 8-11:4.7.%[1]s 12:5.7.%[1]s", k) }

const (
	joinPublicRule    = "1-5:5.2.5 6-7:4.2.5 8-11:4.3.6 12:5.3.6"
	joinOtherwiseRule = "1-5:5.2.6 6-7:4.2.6 8-11:4.3.7 12:5.3.7"
	unknownMemberRule = "1-5:5.6 6:4.6 7:4.7 8-11:4.8 12:5.8"
)

func TestMemberRules(t *testing.T) {
	join := func(u id.UserID) func(*testing.T, *authtest.Room) auth.Event {
		return func(_ *testing.T, r *authtest.Room) auth.Event {
			return r.Build(memberEv(u, u, membership(auth.Join)))
		}
	}
	runRuleCases(t, []ruleCase{
		{name: "member event without state_key", versions: "1-12", rule: memberRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(authtest.Spec{Type: auth.TypeMember, Sender: bob, Content: membership(auth.Join)})
			}},
		{name: "member event without membership", versions: "1-12", rule: memberRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"displayname": "Bob"}))
			}},
		{name: "join signed by the authorising server", versions: "8-12", rule: memberRule("2.1"), allow: true,
			joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				s := memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)})
				s.Signers = []id.ServerName{"b.test", "a.test"}
				return r.Build(s)
			}},
		{name: "join not signed by the authorising server", versions: "8-12", rule: memberRule("2.1"),
			joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				s := memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)})
				s.Signers = []id.ServerName{"b.test"}
				return r.Build(s)
			}},

		// join
		{name: "creator's join right after the create event", versions: "1-12", rule: joinRule("1"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				fresh := authtest.NewRoom(r.Version, alice, nil)
				*r = *fresh
				return r.Build(memberEv(alice, alice, membership(auth.Join)))
			}},
		{name: "another user's join right after the create event", versions: "1-12", rule: joinOtherwiseRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				// No join rules yet: a non-creator cannot join.
				fresh := authtest.NewRoom(r.Version, alice, nil)
				fresh.Add(stateEv(auth.TypeJoinRules, "", alice, map[string]any{"join_rule": "private"}))
				*r = *fresh
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join with sender other than state_key", versions: "1-12", rule: joinRule("2"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(alice, bob, membership(auth.Join)))
			}},
		{name: "join of a banned user", versions: "1-12", rule: joinRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join_rule invite with an invite", versions: "1-12", rule: joinRule("4"), allow: true, joinRule: auth.JoinInvite,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join_rule invite without an invite", versions: "1-12", rule: joinRule("4"), joinRule: auth.JoinInvite,
			setup: join(bob)},
		{name: "join_rule knock with an invite", versions: "7-12", rule: joinRule("4"), allow: true, joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join_rule knock without an invite", versions: "7-12", rule: joinRule("4"), joinRule: auth.JoinKnock,
			setup: join(bob)},
		{name: "join_rule knock, unknown before v7, even with an invite", versions: "1-6", rule: joinOtherwiseRule,
			joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join_rule restricted for an invited user", versions: "8-12", rule: restrictedRule("1"), allow: true,
			joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "join_rule restricted authorised by a joined user who may invite", versions: "8-12",
			rule: restrictedRule("3"), allow: true, joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)}))
			}},
		{name: "join_rule restricted without join_authorised_via_users_server", versions: "8-12",
			rule: restrictedRule("2"), joinRule: auth.JoinRestricted, setup: join(bob)},
		{name: "join_rule restricted authorised by a user not in the room", versions: "8-12",
			rule: restrictedRule("2"), joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(carol)}))
			}},
		{name: "join_rule restricted authorised by a user below the invite level", versions: "8-12",
			rule: restrictedRule("2"), joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(carol)
				setLevels(r, nil, map[string]any{"invite": 50})
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(carol)}))
			}},
		{name: "join_rule restricted, unknown before v8", versions: "1-7", rule: joinOtherwiseRule,
			joinRule: auth.JoinRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)}))
			}},
		{name: "join_rule knock_restricted authorised by a joined user", versions: "10-12",
			rule: restrictedRule("3"), allow: true, joinRule: auth.JoinKnockRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)}))
			}},
		{name: "join_rule knock_restricted without authorisation", versions: "10-12",
			rule: restrictedRule("2"), joinRule: auth.JoinKnockRestricted, setup: join(bob)},
		{name: "join_rule knock_restricted, unknown before v10", versions: "1-9", rule: joinOtherwiseRule,
			joinRule: auth.JoinKnockRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)}))
			}},
		{name: "join_rule public", versions: "1-12", rule: joinPublicRule, allow: true, setup: join(bob)},
		{name: "join_rule private", versions: "1-12", rule: joinOtherwiseRule, joinRule: auth.JoinPrivate, setup: join(bob)},

		// invite
		{name: "invite by a member with the invite level", versions: "1-12", rule: inviteRule("4"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(alice, bob, membership(auth.Invite)))
			}},
		{name: "invite by a non-member", versions: "1-12", rule: inviteRule("2"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(carol, bob, membership(auth.Invite)))
			}},
		{name: "invite of a joined user", versions: "1-12", rule: inviteRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(memberEv(alice, bob, membership(auth.Invite)))
			}},
		{name: "invite of a banned user", versions: "1-12", rule: inviteRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(alice, bob, membership(auth.Invite)))
			}},
		{name: "invite below the invite level", versions: "1-12", rule: inviteRule("5"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(carol)
				setLevels(r, nil, map[string]any{"invite": 50})
				return r.Build(memberEv(carol, bob, membership(auth.Invite)))
			}},

		// leave
		{name: "leave of a joined user", versions: "1-12", rule: leaveRule("1"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "rejecting an invite", versions: "1-12", rule: leaveRule("1"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "leave of a user not in the room", versions: "1-12", rule: leaveRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "leave of a banned user", versions: "1-12", rule: leaveRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "retracting a knock", versions: "7-12", rule: leaveRule("1"), allow: true, joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(bob, bob, auth.Knock)
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "retracting a knock before knocking existed", versions: "1-6", rule: leaveRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(bob, bob, auth.Knock)
				return r.Build(memberEv(bob, bob, membership(auth.Leave)))
			}},
		{name: "kick by a non-member", versions: "1-12", rule: leaveRule("2"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(memberEv(carol, bob, membership(auth.Leave)))
			}},
		{name: "unban below the ban level", versions: "1-12", rule: leaveRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(carol)
				setLevels(r, map[id.UserID]int{carol: 50}, map[string]any{"ban": 60, "kick": 10})
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(carol, bob, membership(auth.Leave)))
			}},
		{name: "unban with ban and kick levels", versions: "1-12", rule: leaveRule("4"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(alice, bob, membership(auth.Leave)))
			}},
		{name: "kick of a lower user", versions: "1-12", rule: leaveRule("4"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(memberEv(alice, bob, membership(auth.Leave)))
			}},
		{name: "kick of an equal user", versions: "1-12", rule: leaveRule("5"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				r.Join(carol)
				setLevels(r, map[id.UserID]int{bob: 50, carol: 50}, nil)
				return r.Build(memberEv(carol, bob, membership(auth.Leave)))
			}},
		{name: "kick below the kick level", versions: "1-12", rule: leaveRule("5"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				r.Join(carol)
				setLevels(r, map[id.UserID]int{carol: 40}, nil)
				return r.Build(memberEv(carol, bob, membership(auth.Leave)))
			}},

		// ban
		{name: "ban by a non-member", versions: "1-12", rule: banRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(carol, bob, membership(auth.Ban)))
			}},
		{name: "ban of a lower user", versions: "1-12", rule: banRule("2"), allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(memberEv(alice, bob, membership(auth.Ban)))
			}},
		{name: "ban of a higher user", versions: "1-12", rule: banRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				r.Join(carol)
				setLevels(r, map[id.UserID]int{bob: 60, carol: 50}, nil)
				return r.Build(memberEv(carol, bob, membership(auth.Ban)))
			}},
		{name: "ban below the ban level", versions: "1-12", rule: banRule("3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(carol)
				setLevels(r, map[id.UserID]int{carol: 49}, nil)
				return r.Build(memberEv(carol, bob, membership(auth.Ban)))
			}},

		// knock
		{name: "knock on a knock room", versions: "7-12", rule: knockRule("3"), allow: true, joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock on a public room", versions: "7-12", rule: knockRule("1"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock on a knock_restricted room", versions: "10-12", rule: knockRule("3"), allow: true,
			joinRule: auth.JoinKnockRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock on a knock_restricted room before v10", versions: "7-9", rule: knockRule("1"),
			joinRule: auth.JoinKnockRestricted,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock for someone else", versions: "7-12", rule: knockRule("2"), joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(carol, bob, membership(auth.Knock)))
			}},
		{name: "knock of an invited user", versions: "7-12", rule: knockRule("4"), joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock of a banned user", versions: "7-12", rule: knockRule("4"), joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Ban)
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "knock before v7 is an unknown membership", versions: "1-6", rule: unknownMemberRule,
			joinRule: auth.JoinKnock,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership(auth.Knock)))
			}},
		{name: "unknown membership", versions: "1-12", rule: unknownMemberRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(memberEv(bob, bob, membership("dance")))
			}},
	})
}
