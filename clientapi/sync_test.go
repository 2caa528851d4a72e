package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

func TestSyncInitialThenIncremental(t *testing.T) {
	s := apptest.Start(t)
	alice, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"name": "Lounge", "preset": "private_chat"})
	for i, b := range []string{"one", "two", "three"} {
		sendText(t, s, tok, room, "t"+string(rune('a'+i)), b)
	}

	first := mustSync(t, s, tok, "")
	jr, ok := first.Rooms.Join[room]
	if !ok {
		t.Fatalf("initial sync lacks the room: %+v", first.Rooms.Join)
	}
	t.Run("timeline ends with the messages in order", func(t *testing.T) {
		if got := joinList(bodies(jr.Timeline.Events)); got != "one,two,three" {
			t.Errorf("messages %q", got)
		}
		if jr.Timeline.PrevBatch == "" {
			t.Error("no prev_batch")
		}
	})
	t.Run("state before the timeline plus timeline is the whole state", func(t *testing.T) {
		all := append(append([]syncEvent{}, jr.State.Events...), jr.Timeline.Events...)
		for _, want := range [][2]string{{"m.room.create", ""}, {"m.room.name", ""}, {"m.room.member", alice}, {"m.room.power_levels", ""}} {
			if findState(all, want[0], want[1]) == nil {
				t.Errorf("no %s/%s in state+timeline", want[0], want[1])
			}
		}
		for _, ev := range jr.Timeline.Events {
			if findState(jr.State.Events, ev.Type, "") != nil && ev.StateKey != nil && *ev.StateKey == "" && ev.Type != "m.room.message" {
				if st := findState(jr.State.Events, ev.Type, ""); st.EventID == ev.EventID {
					t.Errorf("event %s is in both state and timeline", ev.EventID)
				}
			}
		}
	})
	t.Run("summary and the empty sections have the spec's shape", func(t *testing.T) {
		if jr.Summary["m.joined_member_count"] != float64(1) || jr.Summary["m.invited_member_count"] != float64(0) {
			t.Errorf("summary %v", jr.Summary)
		}
		if jr.UnreadNotifications == nil || jr.Ephemeral == nil || jr.AccountData == nil {
			t.Errorf("missing room sections: %+v", jr)
		}
		res := s.Do(t, http.MethodGet, syncQuery(""), tok, nil)
		for _, key := range []string{"presence", "account_data", "to_device", "device_lists", "device_one_time_keys_count"} {
			if _, ok := res.Body[key]; !ok {
				t.Errorf("no %s in %s", key, res.Raw)
			}
		}
	})

	t.Run("nothing new: the room is absent", func(t *testing.T) {
		again := mustSync(t, s, tok, first.NextBatch)
		if len(again.Rooms.Join) != 0 {
			t.Errorf("rooms %v", again.Rooms.Join)
		}
		if again.NextBatch != first.NextBatch {
			t.Errorf("next_batch moved from %s to %s with nothing new", first.NextBatch, again.NextBatch)
		}
	})

	id4 := sendText(t, s, tok, room, "t4", "four")
	inc := mustSync(t, s, tok, first.NextBatch)
	t.Run("incremental sync has exactly the new event", func(t *testing.T) {
		tl := inc.Rooms.Join[room].Timeline
		if len(tl.Events) != 1 || tl.Events[0].EventID != id4 || tl.Limited {
			t.Fatalf("timeline %+v", tl)
		}
		if tl.Events[0].RoomID != "" {
			t.Errorf("events under rooms.join carry no room_id (ClientEventWithoutRoomID): %+v", tl.Events[0])
		}
		if tl.Events[0].Unsigned["transaction_id"] != "t4" {
			t.Errorf("the sending device should see its transaction id: %v", tl.Events[0].Unsigned)
		}
		if len(inc.Rooms.Join[room].State.Events) != 0 {
			t.Errorf("state delta should be empty: %+v", inc.Rooms.Join[room].State)
		}
	})
	t.Run("full_state sends the state again", func(t *testing.T) {
		full := mustSync(t, s, tok, inc.NextBatch, "full_state", "true")
		jr, ok := full.Rooms.Join[room]
		if !ok || findState(jr.State.Events, "m.room.create", "") == nil {
			t.Fatalf("full_state: %+v", full.Rooms.Join)
		}
	})
}

func TestSyncTimelineLimitAndStateDelta(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	start := mustSync(t, s, tok, "").NextBatch
	sendText(t, s, tok, room, "a", "a")
	res := s.Do(t, http.MethodPut, v3+"/rooms/"+room+"/state/m.room.topic", tok, obj{"topic": "gap"})
	apptest.MustStatus(t, res, http.StatusOK)
	for i, b := range []string{"b", "c", "d"} {
		sendText(t, s, tok, room, "m"+string(rune('0'+i)), b)
	}
	body := mustSync(t, s, tok, start, "filter", `{"room":{"timeline":{"limit":2}}}`)
	jr := body.Rooms.Join[room]
	if got := joinList(bodies(jr.Timeline.Events)); got != "c,d" || !jr.Timeline.Limited || jr.Timeline.PrevBatch == "" {
		t.Fatalf("timeline %q limited %v prev_batch %q", got, jr.Timeline.Limited, jr.Timeline.PrevBatch)
	}
	topic := findState(jr.State.Events, "m.room.topic", "")
	if topic == nil || topic.Content["topic"] != "gap" {
		t.Errorf("the topic changed in the gap must be in state: %+v", jr.State.Events)
	}
	if len(jr.State.Events) != 1 {
		t.Errorf("state delta has %d events, want only the topic", len(jr.State.Events))
	}
}

func TestSyncFilters(t *testing.T) {
	s := apptest.Start(t)
	alice, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	other := newRoom(t, s, tok, nil)
	sendText(t, s, tok, room, "a", "hello")
	up := s.Do(t, http.MethodPost, filterPath(alice), tok, obj{"room": obj{"timeline": obj{"types": []string{"m.room.mess*"}}}})
	apptest.MustStatus(t, up, http.StatusOK)

	cases := []struct {
		name   string
		filter string
		check  func(t *testing.T, b syncBody)
	}{
		{"stored filter by id: only messages", up.String("filter_id"), func(t *testing.T, b syncBody) {
			for _, ev := range b.Rooms.Join[room].Timeline.Events {
				if ev.Type != "m.room.message" {
					t.Errorf("event of type %s passed the filter", ev.Type)
				}
			}
			if len(b.Rooms.Join[room].Timeline.Events) != 1 {
				t.Errorf("timeline %+v", b.Rooms.Join[room].Timeline)
			}
		}},
		{"not_rooms drops the room", `{"room":{"not_rooms":["` + other + `"]}}`, func(t *testing.T, b syncBody) {
			if _, ok := b.Rooms.Join[other]; ok {
				t.Error("excluded room is present")
			}
			if _, ok := b.Rooms.Join[room]; !ok {
				t.Error("other room is missing")
			}
		}},
		{"event_fields keeps only the listed fields", `{"event_fields":["type","content.body"]}`, func(t *testing.T, b syncBody) {
			for _, ev := range b.Rooms.Join[room].Timeline.Events {
				if ev.EventID != "" || ev.Sender != "" {
					t.Fatalf("event %+v has fields not asked for", ev)
				}
			}
		}},
		{"event_format federation gives the signed PDU", `{"event_format":"federation"}`, func(t *testing.T, b syncBody) {
			evs := b.Rooms.Join[room].Timeline.Events
			if len(evs) == 0 {
				t.Fatal("empty timeline")
			}
			for _, ev := range evs {
				if ev.Signatures == nil || ev.RoomID != room {
					t.Fatalf("event %+v is not in the federation format", ev)
				}
			}
		}},
		{"lazy loading keeps the members of the timeline's senders", `{"room":{"timeline":{"limit":1},"state":{"lazy_load_members":true}}}`, func(t *testing.T, b syncBody) {
			jr := b.Rooms.Join[room]
			if findState(jr.State.Events, "m.room.member", alice) == nil {
				t.Errorf("own member event missing from lazy state %+v", jr.State.Events)
			}
		}},
		{"state filter not_types", `{"room":{"timeline":{"limit":1},"state":{"not_types":["m.room.member"]}}}`, func(t *testing.T, b syncBody) {
			jr := b.Rooms.Join[room]
			if findState(jr.State.Events, "m.room.member", alice) != nil || findState(jr.State.Events, "m.room.create", "") == nil {
				t.Errorf("state %+v", jr.State.Events)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, mustSync(t, s, tok, "", "filter", c.filter)) })
	}
}

func TestSyncRefusals(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	cases := []struct {
		name    string
		path    string
		token   string
		status  int
		errcode string
	}{
		{"garbage since", syncQuery("garbage"), tok, 400, "M_INVALID_PARAM"},
		{"since of another server", syncQuery("s72594_4483_1934"), tok, 400, "M_INVALID_PARAM"},
		{"since ahead of the server", syncQuery("p1_999999_0_0_0_0_0_0"), tok, 400, "M_UNKNOWN_POS"},
		{"inline filter not JSON", syncQuery("", "filter", `{"room":`), tok, 400, "M_NOT_JSON"},
		{"inline filter with a bad field", syncQuery("", "filter", `{"room":{"timeline":{"limit":-3}}}`), tok, 400, "M_BAD_JSON"},
		{"unknown filter id", syncQuery("", "filter", "424242"), tok, 400, "M_INVALID_PARAM"},
		{"timeout not a number", syncQuery("", "timeout", "soon"), tok, 400, "M_INVALID_PARAM"},
		{"unknown set_presence", syncQuery("", "set_presence", "busy"), tok, 400, "M_INVALID_PARAM"},
		{"full_state not a boolean", syncQuery("", "full_state", "yes"), tok, 400, "M_INVALID_PARAM"},
		{"no access token", syncQuery(""), "", 401, "M_MISSING_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, http.MethodGet, c.path, c.token, nil)
			if res.Status != c.status || res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Raw, c.status, c.errcode)
			}
		})
	}
	t.Run("set_presence offline is accepted", func(t *testing.T) {
		mustSync(t, s, tok, "", "set_presence", "offline")
	})
}

func TestSyncLongPoll(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	since := mustSync(t, s, tok, "").NextBatch

	t.Run("times out empty", func(t *testing.T) {
		start := time.Now()
		b := mustSync(t, s, tok, since, "timeout", "300")
		if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
			t.Errorf("returned after %v, before the timeout", elapsed)
		}
		if len(b.Rooms.Join) != 0 || b.NextBatch != since {
			t.Errorf("empty long-poll answered %+v", b)
		}
	})

	t.Run("woken by a send", func(t *testing.T) {
		done := make(chan syncBody, 1)
		start := time.Now()
		go func() { done <- mustSync(t, s, tok, since, "timeout", "60000") }()
		id := sendText(t, s, tok, room, "wake", "wake up")
		b := <-done
		if elapsed := time.Since(start); elapsed > 30*time.Second {
			t.Errorf("took %v: the send did not wake the long-poll", elapsed)
		}
		evs := b.Rooms.Join[room].Timeline.Events
		if len(evs) != 1 || evs[0].EventID != id {
			t.Errorf("timeline %+v, want the sent event", evs)
		}
	})
}

func TestSyncInvite(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	since := mustSync(t, s, bobTok, "").NextBatch

	done := make(chan syncBody, 1)
	go func() { done <- mustSync(t, s, bobTok, since, "timeout", "60000") }()
	room := newRoom(t, s, aliceTok, obj{"invite": []string{bob}, "name": "Secret", "preset": "private_chat"})
	b := <-done
	inv, ok := b.Rooms.Invite[room]
	if !ok {
		t.Fatalf("the invite did not reach bob's long-poll: %+v", b.Rooms)
	}
	evs := inv.InviteState.Events
	for _, want := range [][2]string{{"m.room.create", ""}, {"m.room.join_rules", ""}, {"m.room.name", ""}, {"m.room.member", bob}} {
		if findState(evs, want[0], want[1]) == nil {
			t.Errorf("invite_state lacks %s/%s: %+v", want[0], want[1], evs)
		}
	}
	if m := findState(evs, "m.room.member", bob); m != nil && m.Content["membership"] != "invite" {
		t.Errorf("bob's member event %+v", m)
	}
	if _, ok := b.Rooms.Join[room]; ok {
		t.Error("an invited user must not see the room's timeline")
	}
	if _, ok := mustSync(t, s, bobTok, "").Rooms.Invite[room]; !ok {
		t.Error("initial sync lacks the pending invite")
	}
}

// Sync tokens are database positions: they survive a restart.
func TestSyncTokenSurvivesRestart(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	since := mustSync(t, s, tok, "").NextBatch
	s.Restart(t)
	id := sendText(t, s, tok, room, "after", "after restart")
	b := mustSync(t, s, tok, since)
	evs := b.Rooms.Join[room].Timeline.Events
	if len(evs) != 1 || evs[0].EventID != id {
		t.Errorf("timeline after restart %+v", evs)
	}
}

// A selective timeline filter still fills its limit when the newest
// events of the range do not match: the engine reads further back.
func TestSyncSelectiveFilterFillsTheLimit(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, nil)
	start := mustSync(t, s, tok, "").NextBatch
	for i, b := range []string{"x", "y", "z"} {
		sendText(t, s, tok, room, "s"+string(rune('0'+i)), b)
	}
	for i := range 12 {
		res := s.Do(t, http.MethodPut, v3+"/rooms/"+room+"/state/m.room.topic", tok, obj{"topic": fmt.Sprint("topic ", i)})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	filter := `{"room":{"timeline":{"limit":2,"types":["m.room.message"]}}}`
	for _, since := range []string{start, ""} {
		t.Run("since="+since, func(t *testing.T) {
			jr := mustSync(t, s, tok, since, "filter", filter).Rooms.Join[room]
			if got := joinList(bodies(jr.Timeline.Events)); got != "y,z" || !jr.Timeline.Limited {
				t.Errorf("timeline %q limited %v, want y,z limited", got, jr.Timeline.Limited)
			}
			// The topics were all set after the timeline's first event, and
			// the filter keeps them out of the timeline: the state section
			// carries the one in force at its end, or the client would
			// never learn of it (syncer/state_history.go, as Synapse).
			if topic := findState(jr.State.Events, "m.room.topic", ""); topic == nil || topic.Content["topic"] != "topic 11" {
				t.Errorf("the topic in force at the end of the timeline is not in state: %+v", topic)
			}
		})
	}
}
