package auth_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

func TestSelectAuthEvents(t *testing.T) {
	const alice = id.UserID("@alice:a") // the sender of every event
	create := auth.StateKey{Type: "m.room.create"}
	pl := auth.StateKey{Type: "m.room.power_levels"}
	jr := auth.StateKey{Type: "m.room.join_rules"}
	member := func(u string) auth.StateKey { return auth.StateKey{Type: "m.room.member", StateKey: u} }
	tests := []struct {
		name    string
		v       string
		typ, sk string
		content string
		want    []auth.StateKey
	}{
		{"create", "10", "m.room.create", "", `{}`, nil},
		{"message", "10", "m.room.message", "", `{"body":"x"}`, []auth.StateKey{create, pl, member("@alice:a")}},
		{"message v12 has no create", "12", "m.room.message", "", `{}`, []auth.StateKey{pl, member("@alice:a")}},
		{"own join", "10", "m.room.member", "@alice:a", `{"membership":"join"}`, []auth.StateKey{create, pl, member("@alice:a"), jr}},
		{"invite", "10", "m.room.member", "@bob:b", `{"membership":"invite"}`, []auth.StateKey{create, pl, member("@alice:a"), member("@bob:b"), jr}},
		{"knock", "10", "m.room.member", "@alice:a", `{"membership":"knock"}`, []auth.StateKey{create, pl, member("@alice:a"), jr}},
		{"leave has no join rules", "10", "m.room.member", "@bob:b", `{"membership":"leave"}`, []auth.StateKey{create, pl, member("@alice:a"), member("@bob:b")}},
		{"third-party invite", "10", "m.room.member", "@bob:b", `{"membership":"invite","third_party_invite":{"signed":{"token":"tok"}}}`,
			[]auth.StateKey{create, pl, member("@alice:a"), member("@bob:b"), jr, {Type: "m.room.third_party_invite", StateKey: "tok"}}},
		{"restricted join", "10", "m.room.member", "@alice:a", `{"membership":"join","join_authorised_via_users_server":"@carol:c"}`,
			[]auth.StateKey{create, pl, member("@alice:a"), jr, member("@carol:c")}},
		{"restricted join before v8", "7", "m.room.member", "@alice:a", `{"membership":"join","join_authorised_via_users_server":"@carol:c"}`,
			[]auth.StateKey{create, pl, member("@alice:a"), jr}},
		{"v12 join", "12", "m.room.member", "@alice:a", `{"membership":"join"}`, []auth.StateKey{pl, member("@alice:a"), jr}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := auth.SelectAuthEvents(roomversion.MustLookup(roomversion.ID(tc.v)), tc.typ, &tc.sk, alice, json.RawMessage(tc.content))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
