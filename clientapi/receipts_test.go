package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func receiptPath(room, typ, event string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + "/receipt/" + typ + "/" + url.PathEscape(event)
}

// receiptsOf decodes the one m.receipt event of room in a sync: event id →
// receipt type → user → data. ok is false when there is none.
func receiptsOf(t *testing.T, body syncBody, room string) (map[string]map[string]map[string]map[string]any, bool) {
	t.Helper()
	evs := ephemeralOf(body, room, "m.receipt")
	if len(evs) == 0 {
		return nil, false
	}
	if len(evs) > 1 {
		t.Fatalf("%d m.receipt events in one room: not coalesced", len(evs))
	}
	out := map[string]map[string]map[string]map[string]any{}
	for ev, byType := range evs[0].Content {
		out[ev] = map[string]map[string]map[string]any{}
		for typ, byUser := range byType.(map[string]any) {
			out[ev][typ] = map[string]map[string]any{}
			for u, data := range byUser.(map[string]any) {
				out[ev][typ][u] = data.(map[string]any)
			}
		}
	}
	return out, true
}

func TestReceipts(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	_, carolTok := s.Register(t, "carol", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	e1 := sendText(t, s, aliceTok, room, "r1", "one")
	e2 := sendText(t, s, aliceTok, room, "r2", "two")
	aliceSince := mustSync(t, s, aliceTok, "").NextBatch
	bobSince := mustSync(t, s, bobTok, "").NextBatch
	post := func(t *testing.T, token, typ, event string, body any, status int, code string) {
		t.Helper()
		res := s.Do(t, http.MethodPost, receiptPath(room, typ, event), token, body)
		apptest.MustStatus(t, res, status)
		if res.Errcode() != code {
			t.Fatalf("errcode %q, want %q", res.Errcode(), code)
		}
	}

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, token, typ, event string
			body                    any
			status                  int
			code                    string
		}{
			{"not joined", carolTok, "m.read", e1, obj{}, http.StatusForbidden, "M_FORBIDDEN"},
			{"unknown type", bobTok, "m.seen", e1, obj{}, http.StatusBadRequest, "M_INVALID_PARAM"},
			{"empty thread", bobTok, "m.read", e1, obj{"thread_id": ""}, http.StatusBadRequest, "M_INVALID_PARAM"},
			{"thread on the read marker", bobTok, "m.fully_read", e1, obj{"thread_id": "main"}, http.StatusBadRequest, "M_INVALID_PARAM"},
			{"event not in that thread", bobTok, "m.read", e2, obj{"thread_id": e1}, http.StatusBadRequest, "M_INVALID_PARAM"},
			{"unknown event", bobTok, "m.read", "$nope:hs", obj{}, http.StatusNotFound, "M_NOT_FOUND"},
		} {
			t.Run(c.name, func(t *testing.T) { post(t, c.token, c.typ, c.event, c.body, c.status, c.code) })
		}
	})

	// Several receipts within one range: bob reads e1 then e2, privately
	// e2, and in the main thread e1; alice reads e2.
	post(t, bobTok, "m.read", e1, obj{}, http.StatusOK, "")
	post(t, bobTok, "m.read", e2, nil, http.StatusOK, "")
	post(t, bobTok, "m.read.private", e2, obj{}, http.StatusOK, "")
	post(t, bobTok, "m.read", e1, obj{"thread_id": "main"}, http.StatusOK, "")
	post(t, aliceTok, "m.read", e2, obj{}, http.StatusOK, "")

	t.Run("one coalesced m.receipt with the latest of each", func(t *testing.T) {
		body := mustSync(t, s, aliceTok, aliceSince, "timeout", "10000")
		got, ok := receiptsOf(t, body, room)
		if !ok {
			t.Fatalf("no m.receipt in %+v", body.Rooms.Join[room].Ephemeral)
		}
		if _, ok := got[e2]["m.read"][bob]["ts"]; !ok {
			t.Errorf("bob's m.read of e2 missing: %v", got)
		}
		if _, ok := got[e2]["m.read"][alice]; !ok {
			t.Errorf("alice's m.read of e2 missing: %v", got)
		}
		if got[e1]["m.read"][bob]["thread_id"] != "main" {
			t.Errorf("bob's main-thread receipt of e1 missing: %v", got[e1])
		}
		if len(got[e1]["m.read"]) != 1 {
			t.Errorf("the unthreaded e1 receipt was replaced by e2 and must not show: %v", got[e1])
		}
		for ev, byType := range got {
			if _, ok := byType["m.read.private"]; ok {
				t.Errorf("another user's private receipt visible on %s", ev)
			}
		}
		aliceSince = body.NextBatch
	})
	t.Run("the private receipt reaches its own user", func(t *testing.T) {
		body := mustSync(t, s, bobTok, bobSince, "timeout", "10000")
		got, _ := receiptsOf(t, body, room)
		if _, ok := got[e2]["m.read.private"][bob]; !ok {
			t.Fatalf("bob's own private receipt missing: %v", got)
		}
	})
	t.Run("a private receipt alone does not show to others", func(t *testing.T) {
		post(t, bobTok, "m.read.private", e1, obj{}, http.StatusOK, "")
		body := mustSync(t, s, aliceTok, aliceSince)
		if got, ok := receiptsOf(t, body, room); ok {
			t.Fatalf("alice sees %v", got)
		}
	})
	t.Run("fully read is room account data, not a receipt", func(t *testing.T) {
		post(t, bobTok, "m.fully_read", e2, obj{}, http.StatusOK, "")
		res := s.Do(t, http.MethodGet, accountDataPath(bob, room, "m.fully_read"), bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("event_id") != e2 {
			t.Fatalf("m.fully_read %s", res.Raw)
		}
	})
	t.Run("read_markers sets the marker and the receipt", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/read_markers", aliceTok,
			obj{"m.fully_read": e1, "m.read": e1})
		apptest.MustStatus(t, res, http.StatusOK)
		res = s.Do(t, http.MethodGet, accountDataPath(alice, room, "m.fully_read"), aliceTok, nil)
		if res.String("event_id") != e1 {
			t.Fatalf("alice's m.fully_read %s", res.Raw)
		}
		body := mustSync(t, s, bobTok, "")
		got, _ := receiptsOf(t, body, room)
		if _, ok := got[e1]["m.read"][alice]; !ok {
			t.Fatalf("alice's m.read of e1 missing from an initial sync: %v", got)
		}
	})
}

func TestReceiptOfAnInvisibleEvent(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	putState(t, s, aliceTok, room, "m.room.history_visibility", obj{"history_visibility": "joined"})
	before := sendText(t, s, aliceTok, room, "h1", "before bob")
	roomPost(t, s, bobTok, room, "join", nil)
	res := s.Do(t, http.MethodPost, receiptPath(room, "m.read", before), bobTok, obj{})
	apptest.MustStatus(t, res, http.StatusNotFound)
	if res.Errcode() != "M_NOT_FOUND" {
		t.Fatalf("errcode %s", res.Errcode())
	}
}
