package storage_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
	"github.com/parleyhq/parley/syncer"
)

// newCountedRoomService is newRoomService on a pool of the test's own,
// whose acquisitions count the sync store's round trips.
func newCountedRoomService(t *testing.T) (*rooms.Service, *storage.Rooms, *pgxpool.Pool) {
	t.Helper()
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t)
	st := storage.NewRooms(pool)
	return rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default()), st, pool
}

// roundTrips counts the pool's acquisitions during f.
func roundTrips(pool *pgxpool.Pool, f func()) int64 {
	before := pool.Stat().AcquireCount()
	f()
	return pool.Stat().AcquireCount() - before
}

func roomsOf(ms []syncer.MembershipChange) map[id.RoomID]string {
	out := map[id.RoomID]string{}
	for _, m := range ms {
		out[m.RoomID] = m.Membership
	}
	return out
}

// TestMembershipLogSkipsReadsAndMissesNoChange: once the stream position
// has been read, a sync whose user's membership did not change reads
// neither its memberships nor their changes nor which rooms were active —
// and a membership committed before the next read of the position is in
// the very next answer, with its change.
func TestMembershipLogSkipsReadsAndMissesNoChange(t *testing.T) {
	svc, st, pool := newCountedRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	posOf := func() int64 {
		t.Helper()
		p, err := sync.CurrentStreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	inRange := func(after, upTo int64) (current, changes []syncer.MembershipChange) {
		t.Helper()
		current, changes, err := sync.MembershipsInRange(ctx, bob, after, upTo)
		if err != nil {
			t.Fatal(err)
		}
		return current, changes
	}
	send := func(room id.RoomID, txn string) {
		t.Helper()
		if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", txn, json.RawMessage(`{"body":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}

	p0 := posOf() // the log starts here
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	p1 := posOf()
	current, changes := inRange(p0, p1)
	if got := roomsOf(current); got[room] != "join" || len(got) != 1 {
		t.Fatalf("memberships %v, want %s joined", got, room)
	}
	if len(changes) != 1 || changes[0].RoomID != room {
		t.Fatalf("changes %+v, want the join of %s", changes, room)
	}

	send(room, "t1")
	p2 := posOf()
	n := roundTrips(pool, func() {
		current, changes = inRange(p1, p2)
	})
	if n != 0 {
		t.Errorf("unchanged membership: %d round trips, want none", n)
	}
	if got := roomsOf(current); got[room] != "join" || len(got) != 1 || len(changes) != 0 {
		t.Errorf("unchanged membership: %v, changes %+v", got, changes)
	}
	var active []id.RoomID
	n = roundTrips(pool, func() {
		if active, err = sync.ActiveRooms(ctx, []id.RoomID{room, other}, p1, p2); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 || !slices.Equal(active, []id.RoomID{room}) {
		t.Errorf("active rooms %v in %d round trips, want [%s] in none", active, n, room)
	}

	// Bob joins another room: the next position read brings the change,
	// the cached memberships are no longer the answer.
	if _, err := svc.Join(ctx, bob, other, ""); err != nil {
		t.Fatal(err)
	}
	if current, _ = inRange(p2, p2); len(roomsOf(current)) != 1 {
		t.Errorf("as of %d (before the join): %v", p2, roomsOf(current))
	}
	p3 := posOf()
	current, changes = inRange(p2, p3)
	if got := roomsOf(current); got[other] != "join" || got[room] != "join" {
		t.Errorf("after the join: memberships %v, want both rooms joined", got)
	}
	if len(changes) != 1 || changes[0].RoomID != other || changes[0].Membership != "join" {
		t.Errorf("after the join: changes %+v, want the join of %s", changes, other)
	}

	// A sync from before the join, up to a later position, still gets the
	// join although the memberships of p3 are cached.
	send(other, "t2")
	p4 := posOf()
	if _, changes = inRange(p2, p4); len(changes) != 1 || changes[0].RoomID != other {
		t.Errorf("(p2, p4]: changes %+v, want the join of %s", changes, other)
	}
	if active, err = sync.ActiveRooms(ctx, []id.RoomID{room, other}, p3, p4); err != nil || !slices.Equal(active, []id.RoomID{other}) {
		t.Errorf("active rooms in (p3, p4]: %v, %v; want [%s]", active, err, other)
	}

	// Leaving is a change too.
	if err := svc.Leave(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	p5 := posOf()
	current, changes = inRange(p4, p5)
	if got := roomsOf(current); got[room] != "leave" {
		t.Errorf("after the leave: memberships %v", got)
	}
	if len(changes) != 1 || changes[0].Membership != "leave" || changes[0].Prev != "join" {
		t.Errorf("after the leave: changes %+v", changes)
	}
}

// TestMembershipLogOutsideItsRange: ranges the log does not cover (before
// it started) are read from the database.
func TestMembershipLogOutsideItsRange(t *testing.T) {
	svc, st, _ := newCountedRoomService(t)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	sync := storage.NewSync(st)
	now, err := sync.CurrentStreamPos(ctx) // the log starts here, after the join
	if err != nil {
		t.Fatal(err)
	}
	_, changes, err := sync.MembershipsInRange(ctx, bob, before, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].RoomID != room {
		t.Errorf("changes %+v, want the join from before the log", changes)
	}
	active, err := sync.ActiveRooms(ctx, []id.RoomID{room}, before, now)
	if err != nil || len(active) != 1 {
		t.Errorf("active %v, %v; want the room", active, err)
	}
}

// TestSharedSummaryFollowsMembership: the room summary is read once for
// every member while the room's membership stays as it was, and a join
// read by the next position read is in the next summary.
func TestSharedSummaryFollowsMembership(t *testing.T) {
	svc, st, pool := newCountedRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob, carol := uniqueUser(t, "alice"), uniqueUser(t, "bob"), uniqueUser(t, "carol")
	if _, err := sync.CurrentStreamPos(ctx); err != nil {
		t.Fatal(err)
	}
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sync.CurrentStreamPos(ctx); err != nil {
		t.Fatal(err)
	}
	summary := func(user id.UserID) syncer.Summary {
		t.Helper()
		sum, err := sync.RoomSummary(ctx, room, user)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if sum := summary(alice); sum.Joined != 2 || !slices.Equal(sum.Heroes, []id.UserID{bob}) {
		t.Errorf("alice's summary %+v", sum)
	}
	var sum syncer.Summary
	if n := roundTrips(pool, func() { sum = summary(bob) }); n != 0 {
		t.Errorf("bob's summary: %d round trips, want none (alice's read is shared)", n)
	}
	if sum.Joined != 2 || !slices.Equal(sum.Heroes, []id.UserID{alice}) {
		t.Errorf("bob's summary %+v, want alice as hero", sum)
	}

	if _, err := svc.Join(ctx, carol, room, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sync.CurrentStreamPos(ctx); err != nil {
		t.Fatal(err)
	}
	if sum := summary(bob); sum.Joined != 3 || !slices.Equal(sum.Heroes, []id.UserID{alice, carol}) {
		t.Errorf("after carol's join: bob's summary %+v", sum)
	}
}
