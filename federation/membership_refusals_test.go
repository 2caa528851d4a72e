package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// remoteErr is what a federation call answered: 200 and "" when it
// succeeded.
func remoteErr(t *testing.T, err error) (int, string, []byte) {
	t.Helper()
	if err == nil {
		return http.StatusOK, "", nil
	}
	var fe *fedclient.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a remote answer: %v", err)
	}
	return fe.Status, fe.Errcode, fe.Body
}

// joinEvent fills a make_join template of hs2 for user as hs2 would, but
// signed with key (hs2's own or another), and edits it with edit first.
func joinEvent(t *testing.T, tpl *fedclient.MakeResponse, server id.ServerName, key signing.Key, edit func(canonicaljson.Value) canonicaljson.Value) *event.Event {
	t.Helper()
	v := roomversion.MustLookup(roomversion.ID(tpl.RoomVersion))
	obj, err := canonicaljson.Parse(tpl.Event, true)
	if err != nil {
		t.Fatal(err)
	}
	obj = obj.With("origin", canonicaljson.StringValue(string(server)))
	if edit != nil {
		obj = edit(obj)
	}
	signed, err := event.HashAndSign(v, obj, server, key)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := event.Parse(v, canonicaljson.Encode(signed))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestMembershipEndpointsRefuse sends hs1 requests signed by hs2 that the
// spec says must be refused, and checks the errcode of each.
func TestMembershipEndpointsRefuse(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob := register(t, hs1, "alice"), register(t, hs2, "bob")
	public := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "public_chat"})
	private := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat"})
	// Restricted to members of a room hs1 does not know, and of one bob
	// is not in.
	restrictedTo := func(allowed string) string {
		return alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat",
			"initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
				"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": allowed}}}}}})
	}
	unknownAllowed := restrictedTo("!unknown:elsewhere.test")
	otherAllowed := restrictedTo(private)
	c := hs2.App.FederationClient()
	ctx := context.Background()
	bobID := id.UserID(bob.id)

	makeJoin := func(room, user string, ver ...string) (*fedclient.MakeResponse, error) {
		return c.MakeMembership(ctx, hs1.Name, "join", id.RoomID(room), id.UserID(user), ver)
	}
	t.Run("make_join", func(t *testing.T) {
		cases := []struct {
			name, room, user string
			ver              []string
			status           int
			errcode          string
		}{
			{"a user of another server", public, alice.id, []string{"10"}, 403, "M_FORBIDDEN"},
			{"a version the joining server lacks", public, bob.id, []string{"1", "2"}, 400, "M_INCOMPATIBLE_ROOM_VERSION"},
			{"an unknown room", "!nowhere:hs1.test", bob.id, []string{"10"}, 404, "M_NOT_FOUND"},
			{"an invite-only room", private, bob.id, []string{"10"}, 403, "M_FORBIDDEN"},
			{"restricted to rooms the resident does not know", unknownAllowed, bob.id, []string{"10"}, 400, "M_UNABLE_TO_AUTHORISE_JOIN"},
			{"restricted to rooms the user is not in", otherAllowed, bob.id, []string{"10"}, 403, "M_FORBIDDEN"},
			{"a public room", public, bob.id, []string{"9", "10"}, 200, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := makeJoin(tc.room, tc.user, tc.ver...)
				status, code, body := remoteErr(t, err)
				if status != tc.status || code != tc.errcode {
					t.Fatalf("%d %s %s, want %d %s", status, code, body, tc.status, tc.errcode)
				}
				if code == "M_INCOMPATIBLE_ROOM_VERSION" {
					var b struct {
						RoomVersion string `json:"room_version"`
					}
					if json.Unmarshal(body, &b); b.RoomVersion != "10" {
						t.Errorf("room_version %q in %s", b.RoomVersion, body)
					}
				}
			})
		}
	})

	t.Run("make_knock", func(t *testing.T) {
		_, err := c.MakeMembership(ctx, hs1.Name, "knock", id.RoomID(public), bobID, nil)
		if status, code, body := remoteErr(t, err); status != 400 || code != "M_MISSING_PARAM" {
			t.Errorf("without ver: %d %s %s", status, code, body)
		}
		_, err = c.MakeMembership(ctx, hs1.Name, "knock", id.RoomID(public), bobID, []string{"10"})
		if status, code, body := remoteErr(t, err); status != 403 || code != "M_FORBIDDEN" {
			t.Errorf("a room that is not knockable: %d %s %s", status, code, body)
		}
	})

	t.Run("make_leave of a stranger", func(t *testing.T) {
		_, err := c.MakeMembership(ctx, hs1.Name, "leave", id.RoomID(public), bobID, nil)
		if status, code, body := remoteErr(t, err); status != 403 || code != "M_FORBIDDEN" {
			t.Errorf("%d %s %s", status, code, body)
		}
	})

	t.Run("send_join", func(t *testing.T) {
		tpl, err := makeJoin(public, bob.id, "10")
		if err != nil {
			t.Fatal(err)
		}
		otherKey, _ := signing.Generate("ed25519:forged")
		forged := joinEvent(t, tpl, hs2.Name, otherKey, nil)
		leave := joinEvent(t, tpl, hs2.Name, hs2.App.SigningKey(), func(o canonicaljson.Value) canonicaljson.Value {
			return o.With("content", canonicaljson.ObjectValue(canonicaljson.Member{Key: "membership", Value: canonicaljson.StringValue("leave")}))
		})
		good := joinEvent(t, tpl, hs2.Name, hs2.App.SigningKey(), nil)
		cases := []struct {
			name    string
			room    string
			eventID id.EventID
			ev      *event.Event
			errcode string
		}{
			{"a signature by an unknown key", public, forged.EventID(), forged, "M_INVALID_PARAM"},
			{"not a join", public, leave.EventID(), leave, "M_INVALID_PARAM"},
			{"another event id than the path's", public, "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", good, "M_INVALID_PARAM"},
			{"another room than the path's", private, good.EventID(), good, "M_INVALID_PARAM"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.SendJoin(ctx, hs1.Name, id.RoomID(tc.room), tc.eventID, tc.ev.Raw())
				if status, code, body := remoteErr(t, err); status != 400 || code != tc.errcode {
					t.Fatalf("%d %s %s, want 400 %s", status, code, body, tc.errcode)
				}
			})
		}
		if m := membershipOf(t, alice, public, bob.id); m != "status 404" {
			t.Errorf("a refused join left bob's membership %q", m)
		}
		resp, err := c.SendJoin(ctx, hs1.Name, id.RoomID(public), good.EventID(), good.Raw())
		if err != nil {
			t.Fatalf("the well-formed join: %v", err)
		}
		if len(resp.State) == 0 || len(resp.AuthChain) == 0 || resp.MembersOmitted {
			t.Errorf("send_join answer: %d state, %d auth chain, members_omitted %v", len(resp.State), len(resp.AuthChain), resp.MembersOmitted)
		}
		if m := membershipOf(t, alice, public, bob.id); m != "join" {
			t.Errorf("after send_join hs1 shows bob's membership %q", m)
		}
		// A retried send_join (the answer was lost) gets the same answer.
		again, err := c.SendJoin(ctx, hs1.Name, id.RoomID(public), good.EventID(), good.Raw())
		if err != nil || len(again.State) != len(resp.State) {
			t.Errorf("retried send_join: %v", err)
		}
	})

	t.Run("invite", func(t *testing.T) {
		v := roomversion.MustLookup("10")
		invite := func(sender, target string) *event.Event {
			sk := target
			ev, err := event.Build(v, event.Proto{Sender: id.UserID(sender), Type: "m.room.member", StateKey: &sk,
				Content: json.RawMessage(`{"membership":"invite"}`), RoomID: "!elsewhere:hs2.test",
				PrevEvents: event.Refs("$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), AuthEvents: event.Refs("$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
				Depth: 5, OriginServerTS: 1}, hs2.Name, hs2.App.SigningKey())
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		send := func(ev *event.Event, version string) ([]byte, error) {
			return c.SendInvite(ctx, hs1.Name, ev.RoomID(), ev.EventID(), fedclient.InviteRequest{RoomVersion: version, Event: ev.Raw()})
		}
		cases := []struct {
			name    string
			ev      *event.Event
			version string
			status  int
			errcode string
		}{
			{"a user who does not exist", invite(bob.id, "@nobody:hs1.test"), "10", 404, "M_NOT_FOUND"},
			{"a user of another server", invite(bob.id, "@carol:hs2.test"), "10", 400, "M_INVALID_PARAM"},
			{"a sender of another server", invite("@mallory:hs1.test", alice.id), "10", 400, "M_INVALID_PARAM"},
			{"an unknown room version", invite(bob.id, alice.id), "99", 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := send(tc.ev, tc.version)
				if status, code, body := remoteErr(t, err); status != tc.status || code != tc.errcode {
					t.Fatalf("%d %s %s, want %d %s", status, code, body, tc.status, tc.errcode)
				}
			})
		}
		raw, err := send(invite(bob.id, alice.id), "10")
		if err != nil {
			t.Fatalf("a valid invite: %v", err)
		}
		signed, err := event.Parse(v, raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := signed.Signatures()[hs1.Name]; !ok {
			t.Errorf("the invitee's server did not sign: %s", raw)
		}
		if err := event.Verify(ctx, signed, hs2.App.Keyring().VerifyKey); err != nil {
			t.Errorf("the signed invite does not verify: %v", err)
		}
		eventually(t, "alice sees the invite in /sync", func() (bool, string) {
			res := alice.do(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil)
			invites, _ := res.Body["rooms"].(map[string]any)["invite"].(map[string]any)
			_, ok := invites["!elsewhere:hs2.test"]
			return ok, string(res.Raw)
		})
	})

	t.Run("client joins", func(t *testing.T) {
		cases := []struct {
			name, path string
			status     int
			errcode    string
		}{
			{"an invalid via", "/_matrix/client/v3/join/" + esc(public) + "?via=not%20a%20server", 400, "M_INVALID_PARAM"},
			{"an unknown alias of another server", "/_matrix/client/v3/join/" + esc("#nothing:"+string(hs1.Name)), 404, "M_NOT_FOUND"},
			{"a room no known server is in", "/_matrix/client/v3/join/" + esc("!unknown:"+string(hs2.Name)), 404, "M_NOT_FOUND"},
			{"an invite-only room", "/_matrix/client/v3/join/" + esc(private) + "?via=" + string(hs1.Name), 403, "M_FORBIDDEN"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := bob.do(t, http.MethodPost, tc.path, map[string]any{})
				if res.Status != tc.status || res.Errcode() != tc.errcode {
					t.Fatalf("%d %s, want %d %s", res.Status, res.Raw, tc.status, tc.errcode)
				}
			})
		}
	})

	t.Run("server ACL", func(t *testing.T) {
		alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(public)+"/state/m.room.server_acl/",
			map[string]any{"allow": []string{"*"}, "deny": []string{string(hs2.Name)}})
		_, err := makeJoin(public, bob.id, "10")
		if status, code, body := remoteErr(t, err); status != 403 || code != "M_FORBIDDEN" {
			t.Errorf("make_join from a denied server: %d %s %s", status, code, body)
		}
	})
}

// TestExchangeThirdPartyInvite: bob's server claims a third-party invite
// alice made for an e-mail address now bound to bob; alice's server turns
// it into an invite that bob's server signs, and bob can join.
func TestExchangeThirdPartyInvite(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob := register(t, hs1, "alice"), register(t, hs2, "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat"})
	identity, err := signing.Generate("ed25519:0")
	if err != nil {
		t.Fatal(err)
	}
	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.third_party_invite/tok3", map[string]any{
		"display_name": "b...@example.org", "key_validity_url": "https://identity.test/_matrix/identity/v2/pubkey/isvalid",
		"public_key": signing.EncodeBase64(identity.Public())})

	claim := func(target string, key signing.Key) error {
		signed, err := signing.SignJSON([]byte(`{"mxid":"`+target+`","token":"tok3"}`), "identity.test", key)
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"type": "m.room.member", "room_id": room, "sender": alice.id, "state_key": target,
			"content": map[string]any{"membership": "invite", "third_party_invite": map[string]any{
				"display_name": "b...@example.org", "signed": json.RawMessage(signed)}}}
		return hs2.App.FederationClient().Do(context.Background(), hs1.Name, http.MethodPut,
			"/_matrix/federation/v1/exchange_third_party_invite/"+url.PathEscape(room), body, nil)
	}
	other, _ := signing.Generate("ed25519:0")
	if status, code, body := remoteErr(t, claim(bob.id, other)); status != 403 || code != "M_FORBIDDEN" {
		t.Errorf("a signed object the identity server did not sign: %d %s %s", status, code, body)
	}
	if status, code, body := remoteErr(t, claim("@carol:"+string(hs1.Name), identity)); status != 403 || code != "M_FORBIDDEN" {
		t.Errorf("a claim for a user of another server: %d %s %s", status, code, body)
	}
	if err := claim(bob.id, identity); err != nil {
		t.Fatalf("the claim: %v", err)
	}
	if m := membershipOf(t, alice, room, bob.id); m != "invite" {
		t.Fatalf("hs1 shows bob's membership %q after the exchange", m)
	}
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(hs1.Name), map[string]any{})
	sameState(t, room, alice, bob)
}

func TestRemoteErrorsSeenByClients(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		errcode string
	}{
		{"a refusal passes through", &fedclient.Error{Status: 403, Errcode: "M_FORBIDDEN", Message: "not invited"}, 403, "M_FORBIDDEN"},
		{"an incompatible version keeps room_version", &fedclient.Error{Status: 400, Errcode: "M_INCOMPATIBLE_ROOM_VERSION",
			Body: []byte(`{"errcode":"M_INCOMPATIBLE_ROOM_VERSION","room_version":"12"}`)}, 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		{"our own malformed request is a gateway error", &fedclient.Error{Status: 400, Errcode: "M_INVALID_PARAM"}, 502, "M_UNKNOWN"},
		{"the remote's authentication of us is not the client's", &fedclient.Error{Status: 401, Errcode: "M_UNAUTHORIZED"}, 502, "M_UNKNOWN"},
		{"a remote failure", &fedclient.Error{Status: 500, Errcode: "M_UNKNOWN"}, 502, "M_UNKNOWN"},
		{"no answer", errors.New("dial tcp: refused"), 502, "M_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := mxerr.As(federation.RemoteError("hs9.test", tc.err))
			if !ok || e.Status != tc.status || e.Code != tc.errcode {
				t.Fatalf("%v, want %d %s", e, tc.status, tc.errcode)
			}
			if tc.errcode == "M_INCOMPATIBLE_ROOM_VERSION" && e.Extra["room_version"] != "12" {
				t.Errorf("room_version lost: %v", e.Extra)
			}
		})
	}
}
