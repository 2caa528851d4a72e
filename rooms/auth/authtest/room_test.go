package authtest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

func TestStandardRoomPassesItsOwnAuthEvents(t *testing.T) {
	for _, v := range []string{"1", "3", "10", "11", "12"} {
		t.Run("v"+v+"/every event of a standard room passes CheckAuthEvents", func(t *testing.T) {
			rv := authtest.Version(v)
			r := authtest.NewStandardRoom(rv, "@alice:a.test", auth.JoinPublic)
			r.Join("@bob:b.test")
			r.Add(authtest.Spec{Type: "m.room.message", Sender: "@bob:b.test", Content: map[string]any{"body": "x"}})
			for _, ev := range r.Events() {
				if err := auth.CheckAuthEvents(rv, ev, r.AuthEvents(ev)); err != nil {
					t.Errorf("%s: %v", ev, err)
				}
			}
		})
	}
}

func TestRoomShape(t *testing.T) {
	r12 := authtest.NewStandardRoom(authtest.Version("12"), "@alice:a.test", auth.JoinPublic)
	r1 := authtest.NewStandardRoom(authtest.Version("1"), "@alice:a.test", auth.JoinPublic)
	evs := r1.Events()
	cases := []struct {
		name string
		ok   bool
	}{
		{"v12 room id is the create event id with '!'",
			string(r12.ID) == "!"+strings.TrimPrefix(string(r12.CreateEvent().ID), "$") && r12.CreateEvent().Room == ""},
		{"v1 event ids carry the sender's server", strings.HasSuffix(string(evs[1].ID), ":a.test")},
		{"v1 create event has no prev or auth events", len(evs[0].Prev) == 0 && len(evs[0].Auth) == 0},
		{"each event follows the previous one", slices.Equal(evs[2].Prev, []id.EventID{evs[1].ID}) && evs[2].Dep == evs[1].Dep+1},
		{"timestamps increase", evs[2].TS > evs[1].TS},
		{"auth events are selected from state", slices.Contains(evs[3].Auth, evs[2].ID) && slices.Contains(evs[3].Auth, evs[0].ID)},
		{"v12 auth events never list the create event", !slices.Contains(r12.Events()[3].Auth, r12.CreateEvent().ID)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Fatalf("not so; events: %v", evs)
			}
		})
	}
}
