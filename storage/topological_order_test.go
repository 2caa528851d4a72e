package storage_test

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	sqlfiles "github.com/parleyhq/parley/sql"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestLocalEventsOnAClampedRemoteEventComeAfterIt: a remote event that
// claims a depth below its prev events' gets a topological position above
// them (storage/topological.go); a local event built on it takes the
// depth the spec asks for (its prev events' depth + 1, far below the room's
// top), and still comes after it in /messages — a message (the group
// commit's prebuilt path) and a state event (the locked path) alike.
func TestLocalEventsOnAClampedRemoteEventComeAfterIt(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	for i := range 5 {
		if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprintf("l%d", i),
			[]byte(`{"msgtype":"m.text","body":"local"}`)); err != nil {
			t.Fatal(err)
		}
	}
	hd := h.head(room)
	shallow := h.buildAtDepth(2, hd, bob, `{"msgtype":"m.text","body":"shallow"}`, hd.Extremities)
	h.mustReceive(shallow)

	msg, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "after",
		[]byte(`{"msgtype":"m.text","body":"after the shallow one"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := h.known(room, msg).Event.Depth(); d != 3 {
		t.Fatalf("the local event's depth is %d, want 3 (the shallow event's + 1)", d)
	}
	topic, err := h.svc.SetState(h.ctx, alice, room, "m.room.topic", "", []byte(`{"topic":"after"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []id.EventID{topic, msg, shallow.EventID()}
	page, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOfStored(page.Chunk); !slices.Equal(got, want) {
		t.Fatalf("/messages back from the end: %v, want %v", got, want)
	}
	// The head as loaded from the database (not the cached one) gives the
	// same answer.
	fresh := rooms.New(rooms.Config{ServerName: roomServer, Key: h.local}, storage.NewRooms(pgtest.NewPool(t)), &recordingNotifier{}, nil, slog.Default())
	next, err := fresh.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "reloaded",
		[]byte(`{"msgtype":"m.text","body":"from a fresh store"}`))
	if err != nil {
		t.Fatal(err)
	}
	page, err = fresh.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOfStored(page.Chunk); !slices.Equal(got, []id.EventID{next, topic}) {
		t.Fatalf("/messages after a send on a reloaded head: %v, want [%s %s]", got, next, topic)
	}
}

// topoTie is the tie-break of events of one depth (sql/0024): the first 64
// bits of the MD5 digest of the event id, signed big-endian.
func topoTie(eid id.EventID) int64 {
	sum := md5.Sum([]byte(eid))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// eventTiedAbove builds candidates until one's tie-break is above other's.
func eventTiedAbove(h *fedHarness, other id.EventID, build func(i int) *event.Event) *event.Event {
	h.t.Helper()
	return eventTied(h, other, true, build)
}

func eventTied(h *fedHarness, other id.EventID, above bool, build func(i int) *event.Event) *event.Event {
	h.t.Helper()
	for i := range 100 {
		ev := build(i)
		if (topoTie(ev.EventID()) > topoTie(other)) == above {
			return ev
		}
	}
	h.t.Fatal("no candidate event on the wanted side of the tie-break")
	return nil
}

// TestMessagesOrderEventsOfOneDepthByEventIDNotArrival: a remote event of
// the same depth as a local one (the two branches of a fork) that arrives
// after it but whose event id's tie-break is lower comes before it in
// /messages — on every server, whatever the arrival order — and paging
// with one-event pages both ways, /context, and a sync's prev_batch (an
// arrival-order token) each give it in that place once.
func TestMessagesOrderEventsOfOneDepthByEventIDNotArrival(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, join := h.publicRoom("")
	fork := h.head(room)
	var local []id.EventID
	for i := range 2 {
		eid, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprintf("l%d", i),
			[]byte(fmt.Sprintf(`{"msgtype":"m.text","body":"local %d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		local = append(local, eid)
	}
	late := eventTied(h, local[0], false, func(i int) *event.Event {
		return h.remoteEvent(fork, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":"late %d"}`, i), []*event.Event{join}, fork.State)
	})
	h.mustReceive(late)
	if k := h.known(room, late.EventID()); k.Event.Depth() != h.known(room, local[0]).Event.Depth() {
		t.Fatal("the late event is not of the first local event's depth")
	}

	want := []id.EventID{join.EventID(), late.EventID(), local[0], local[1]}
	forward := pageAll(t, h.svc, alice, room, "", rooms.Forward, 1)
	if got := forward[len(forward)-4:]; !slices.Equal(got, want) {
		t.Fatalf("forward /messages ends %v, want %v", got, want)
	}
	backward := pageAll(t, h.svc, alice, room, "", rooms.Backward, 1)
	slices.Reverse(backward)
	if !slices.Equal(backward, forward) {
		t.Fatalf("backward pages %v\nforward pages %v", backward, forward)
	}
	c, err := h.svc.Context(h.ctx, alice, room, late.EventID(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Before) != 1 || c.Before[0].Event.EventID() != join.EventID() || len(c.After) != 1 || c.After[0].Event.EventID() != local[0] {
		t.Fatalf("context of the late event: before %v after %v", idsOfStored(c.Before), idsOfStored(c.After))
	}
	if rest := pageAll(t, h.svc, alice, room, c.End, rooms.Forward, 1); !slices.Equal(rest, want[3:]) {
		t.Fatalf("/messages from the context's end: %v, want %v", rest, want[3:])
	}
	// A sync timeline that starts with the late event: paging back from
	// its prev_batch misses none of what arrived before it.
	lateSeq := h.known(room, late.EventID()).Seq
	back := pageAll(t, h.svc, alice, room, rooms.PositionToken(lateSeq-1), rooms.Backward, 1)
	if got := back[:3]; !slices.Equal(got, []id.EventID{local[1], local[0], late.EventID()}) {
		t.Fatalf("/messages back from the sync's prev_batch: %v", got)
	}
}

// TestMessagesReadTokensOfTheOrderBeforeTheTieBreak: a (topo, seq) token
// that /messages handed out before sql/0024 continues where it was.
func TestMessagesReadTokensOfTheOrderBeforeTheTieBreak(t *testing.T) {
	h := newFedHarness(t)
	room, alice, _, _ := h.publicRoom("")
	all := pageAll(t, h.svc, alice, room, "", rooms.Backward, 100)
	for i := 1; i < len(all); i++ {
		k := h.known(room, all[i-1])
		topo := k.Event.Depth() // no fork, no clamping: topo is the depth
		for _, tok := range []string{
			// After the event, as a forward page's end; just before it, as
			// a backward page's end.
			"o" + strconv.FormatInt(topo, 36) + "_" + strconv.FormatInt(k.Seq, 36),
			"o" + strconv.FormatInt(topo, 36) + "_" + strconv.FormatInt(k.Seq-1, 36),
		} {
			page, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: tok, Dir: rooms.Backward, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := all[i-1]
			if strings.HasSuffix(tok, "_"+strconv.FormatInt(k.Seq-1, 36)) {
				want = all[i]
			}
			if len(page.Chunk) != 1 || page.Chunk[0].Event.EventID() != want {
				t.Fatalf("back from the old token %s: %v, want %s", tok, idsOfStored(page.Chunk), want)
			}
		}
	}
	for _, tok := range []string{
		"o0_-" + strconv.FormatUint(1<<63, 36),                                                  // the room's start
		"o" + strconv.FormatInt(math.MaxInt64, 36) + "_" + strconv.FormatInt(math.MaxInt64, 36), // its end
	} {
		if _, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: tok, Dir: rooms.Forward, Limit: 1}); err != nil {
			t.Fatalf("from the old token %s: %v", tok, err)
		}
	}
}

// TestMigration0024GivesStoredEventsTheirTieBreak: the events stored
// before sql/0024 get the tie-break of their event id, the one
// rooms/topological.go describes (topoTie), as do events stored after.
func TestMigration0024GivesStoredEventsTheirTieBreak(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	before, all := fstest.MapFS{}, fstest.MapFS{}
	entries, err := fs.ReadDir(sqlfiles.Migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(sqlfiles.Migrations, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		all[e.Name()] = &fstest.MapFile{Data: data}
		if e.Name() < "0024" {
			before[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	if err := storage.Migrate(ctx, pool, before); err != nil {
		t.Fatal(err)
	}
	insert := `
INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, sender, origin_ts, snapshot_nid, event_json, topo)
SELECT room_nid, d, d, $1 || d, 'm.room.message', '@a:rooms.test', 0, 0, '\x7b7d', 1
FROM rooms, generate_series($2::bigint, $2::bigint + 2) d`
	if _, err := pool.Exec(ctx, `INSERT INTO rooms (room_id, room_version, created_ts) VALUES ('!old:rooms.test', '10', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, insert, "$old", 1); err != nil {
		t.Fatal(err)
	}
	if err := storage.Migrate(ctx, pool, all); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, insert, "$new/+:é", 4); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT event_id, topo_tie FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var eid id.EventID
		var tie int64
		if err := rows.Scan(&eid, &tie); err != nil {
			t.Fatal(err)
		}
		if tie != topoTie(eid) {
			t.Fatalf("topo_tie of %s is %d, want %d", eid, tie, topoTie(eid))
		}
		n++
	}
	if rows.Err() != nil || n != 6 {
		t.Fatalf("%d events read, %v", n, rows.Err())
	}
}
