package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// roomPost posts to /rooms/{roomId}/{what}.
func roomPost(t testing.TB, s *apptest.Server, token, room, what string, body obj) {
	t.Helper()
	if body == nil {
		body = obj{}
	}
	res := s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/"+what, token, body)
	apptest.MustStatus(t, res, http.StatusOK)
}

// putState sets a state event with an empty state key.
func putState(t testing.TB, s *apptest.Server, token, room, typ string, content obj) {
	t.Helper()
	res := s.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(room)+"/state/"+typ, token, content)
	apptest.MustStatus(t, res, http.StatusOK)
}

func TestSyncJoinLeaveAndHistoryVisibility(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	putState(t, s, aliceTok, room, "m.room.history_visibility", obj{"history_visibility": "joined"})
	sendText(t, s, aliceTok, room, "1", "before bob")
	since := mustSync(t, s, bobTok, "").NextBatch

	roomPost(t, s, bobTok, room, "join", nil)
	joined := mustSync(t, s, bobTok, since)
	jr, ok := joined.Rooms.Join[room]
	if !ok {
		t.Fatalf("joined room missing: %+v", joined.Rooms)
	}
	t.Run("a new member with joined visibility sees nothing before the join", func(t *testing.T) {
		if got := bodies(jr.Timeline.Events); len(got) != 0 {
			t.Errorf("saw %q from before the join", got)
		}
		if m := findState(jr.Timeline.Events, "m.room.member", bob); m == nil {
			t.Errorf("own join missing from the timeline %+v", jr.Timeline.Events)
		}
	})
	t.Run("the newly joined room comes with its full state and summary", func(t *testing.T) {
		// As in an initial sync, the room's early state events may be in
		// the timeline (they were visible then) rather than in state.
		all := append(slices.Clone(jr.State.Events), jr.Timeline.Events...)
		if findState(all, "m.room.create", "") == nil || findState(all, "m.room.member", alice) == nil {
			t.Errorf("state %+v, timeline %+v", jr.State.Events, jr.Timeline.Events)
		}
		heroes, _ := jr.Summary["m.heroes"].([]any)
		if jr.Summary["m.joined_member_count"] != float64(2) || !slices.Contains(heroes, any(alice)) {
			t.Errorf("summary %v", jr.Summary)
		}
	})

	sendText(t, s, aliceTok, room, "2", "while bob is here")
	during := mustSync(t, s, bobTok, joined.NextBatch)
	if got := joinList(bodies(during.Rooms.Join[room].Timeline.Events)); got != "while bob is here" {
		t.Fatalf("timeline %q", got)
	}

	roomPost(t, s, bobTok, room, "leave", nil)
	sendText(t, s, aliceTok, room, "3", "after bob left")
	left := mustSync(t, s, bobTok, during.NextBatch)
	t.Run("the left room is in rooms.leave up to the leave", func(t *testing.T) {
		lr, ok := left.Rooms.Leave[room]
		if !ok {
			t.Fatalf("no leave section: %+v", left.Rooms)
		}
		evs := lr.Timeline.Events
		if len(evs) == 0 || evs[len(evs)-1].Type != "m.room.member" || evs[len(evs)-1].Content["membership"] != "leave" {
			t.Errorf("leave timeline should end with the leave: %+v", evs)
		}
		if got := bodies(evs); len(got) != 0 {
			t.Errorf("saw %q after leaving", got)
		}
		if _, ok := left.Rooms.Join[room]; ok {
			t.Error("left room still under join")
		}
	})
	t.Run("later syncs show nothing of the left room", func(t *testing.T) {
		after := mustSync(t, s, bobTok, left.NextBatch)
		if _, ok := after.Rooms.Leave[room]; ok {
			t.Error("the leave is reported twice")
		}
		if _, ok := after.Rooms.Join[room]; ok {
			t.Error("left room under join")
		}
	})
	t.Run("initial sync lists the left room only with include_leave", func(t *testing.T) {
		if _, ok := mustSync(t, s, bobTok, "").Rooms.Leave[room]; ok {
			t.Error("left room without include_leave")
		}
		with := mustSync(t, s, bobTok, "", "filter", `{"room":{"include_leave":true}}`)
		lr, ok := with.Rooms.Leave[room]
		if !ok {
			t.Fatalf("include_leave: %+v", with.Rooms)
		}
		if got := joinList(bodies(lr.Timeline.Events)); got != "while bob is here" {
			t.Errorf("archived timeline %q", got)
		}
	})
}

func TestSyncSharedHistoryAndLazyMembers(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	putState(t, s, aliceTok, room, "m.room.history_visibility", obj{"history_visibility": "shared"})
	since := mustSync(t, s, bobTok, "").NextBatch
	sendText(t, s, aliceTok, room, "1", "history")
	roomPost(t, s, bobTok, room, "join", nil)

	b := mustSync(t, s, bobTok, since)
	if got := joinList(bodies(b.Rooms.Join[room].Timeline.Events)); got != "history" {
		t.Errorf("shared history: timeline %q, want the message from before the join", got)
	}

	lazy := `{"room":{"state":{"lazy_load_members":true}}}`
	sendText(t, s, aliceTok, room, "2", "hello bob")
	inc := mustSync(t, s, bobTok, b.NextBatch, "filter", lazy)
	if findState(inc.Rooms.Join[room].State.Events, "m.room.member", alice) == nil {
		t.Errorf("lazy-loading: the sender's member event is missing from %+v", inc.Rooms.Join[room].State.Events)
	}
}

func TestSyncPrevBatchPaginatesWithMessages(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	for i, b := range []string{"m1", "m2", "m3", "m4", "m5"} {
		sendText(t, s, tok, room, "p"+string(rune('0'+i)), b)
	}
	tl := mustSync(t, s, tok, "", "filter", `{"room":{"timeline":{"limit":2}}}`).Rooms.Join[room].Timeline
	if got := joinList(bodies(tl.Events)); got != "m4,m5" || !tl.Limited {
		t.Fatalf("timeline %q limited %v", got, tl.Limited)
	}
	res := s.Do(t, http.MethodGet, v3+"/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=3&from="+url.QueryEscape(tl.PrevBatch), tok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var page struct {
		Chunk []syncEvent `json:"chunk"`
	}
	mustUnmarshal(t, res.Raw, &page)
	if got := joinList(bodies(page.Chunk)); got != "m3,m2,m1" {
		t.Errorf("/messages from prev_batch gave %q, want the three before the timeline, newest first", got)
	}
}

func TestSyncInviteRejectedAndKnock(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"invite": []string{bob}})
	invited := mustSync(t, s, bobTok, "")
	if _, ok := invited.Rooms.Invite[room]; !ok {
		t.Fatalf("no invite: %+v", invited.Rooms)
	}
	roomPost(t, s, bobTok, room, "leave", nil)
	rejected := mustSync(t, s, bobTok, invited.NextBatch)
	if _, ok := rejected.Rooms.Leave[room]; !ok {
		t.Errorf("a rejected invite goes to rooms.leave: %+v", rejected.Rooms)
	}
	if _, ok := rejected.Rooms.Invite[room]; ok {
		t.Error("the rejected invite is still under invite")
	}

	knockRoom := newRoom(t, s, aliceTok, obj{"room_version": "10"})
	putState(t, s, aliceTok, knockRoom, "m.room.join_rules", obj{"join_rule": "knock"})
	res := s.Do(t, http.MethodPost, v3+"/knock/"+url.PathEscape(knockRoom), bobTok, obj{})
	apptest.MustStatus(t, res, http.StatusOK)
	knocked := mustSync(t, s, bobTok, rejected.NextBatch)
	k, ok := knocked.Rooms.Knock[knockRoom].(map[string]any)
	if !ok {
		t.Fatalf("no knock section: %+v", knocked.Rooms)
	}
	ks, _ := k["knock_state"].(map[string]any)
	if evs, _ := ks["events"].([]any); len(evs) < 2 {
		t.Errorf("knock_state %v", ks)
	}
}
