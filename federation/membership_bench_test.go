package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

// BenchmarkRemoteJoinLargeRoom measures a remote join of a room with
// 10,000 members (PARLEY_BENCH_MEMBERS changes the number): hs2's user
// joins through hs1 — make_join, send_join answered with the whole state
// and auth chain, every event verified and the room imported on hs2. Each
// further iteration leaves and joins again (hs2 then holds the room
// stale, so the join is a remote one again). Both servers run in this
// process: the allocations are both sides'.
//
//	go run ./storage/pgtest/pgtestrun -- go test ./federation -run '^$' -bench RemoteJoinLargeRoom -benchtime 3x
func BenchmarkRemoteJoinLargeRoom(b *testing.B) {
	members := 10000
	if n, err := strconv.Atoi(os.Getenv("PARLEY_BENCH_MEMBERS")); err == nil && n > 0 {
		members = n
	}
	srvs := apptest.StartFederation(b, 2)
	hs1, hs2 := srvs[0], srvs[1]
	_, aliceToken := hs1.Register(b, "alice", e2ePassword)
	_, bobToken := hs2.Register(b, "bob", e2ePassword)
	bobID := "@bob:" + string(hs2.Name)
	res := hs1.Do(b, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(b, res, http.StatusOK)
	room := id.RoomID(res.String("room_id"))

	// The members join through the rooms service: accounts are not needed
	// for membership, and 10,000 registrations would dominate the setup.
	rs := hs1.App.Client().Rooms
	start := time.Now()
	for i := range members {
		if _, err := rs.Join(context.Background(), id.UserID(fmt.Sprintf("@m%05d:%s", i, hs1.Name)), room, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d members joined in %s", members, time.Since(start))

	joinPath := "/_matrix/client/v3/join/" + url.PathEscape(string(room)) + "?via=" + string(hs1.Name)
	leavePath := "/_matrix/client/v3/rooms/" + url.PathEscape(string(room)) + "/leave"
	memberPath := "/_matrix/client/v3/rooms/" + url.PathEscape(string(room)) + "/state/m.room.member/" + url.PathEscape(bobID)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		apptest.MustStatus(b, hs2.Do(b, http.MethodPost, joinPath, bobToken, map[string]any{}), http.StatusOK)
		b.StopTimer()
		if i == b.N-1 {
			break
		}
		apptest.MustStatus(b, hs2.Do(b, http.MethodPost, leavePath, bobToken, map[string]any{}), http.StatusOK)
		deadline := time.Now().Add(30 * time.Second)
		for hs1.Do(b, http.MethodGet, memberPath, aliceToken, nil).String("membership") != "leave" {
			if time.Now().After(deadline) {
				b.Fatal("hs1 never saw bob leave")
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.StopTimer()
	res = hs2.Do(b, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(string(room))+"/joined_members", bobToken, nil)
	joined, _ := res.Body["joined"].(map[string]any)
	if len(joined) != members+2 {
		b.Fatalf("hs2 sees %d joined members, want %d", len(joined), members+2)
	}
}
