package queue_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// TestTypingAndReceiptsReachEveryOtherServer: in a room of three servers,
// a typing notification and a read receipt reach both other servers'
// users. hs2 and hs3 joined through hs1, which does not pass EDUs on, so
// what hs3 sees of bob@hs2 came from hs2 directly and what hs2 sees of
// carol@hs3 from hs3.
func TestTypingAndReceiptsReachEveryOtherServer(t *testing.T) {
	servers := apptest.StartFederation(t, 3, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = time.Second
	})
	hs1, hs2, hs3 := servers[0], servers[1], servers[2]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")
	carol, carolTok := hs3.Register(t, "carol", "correct horse battery")
	res := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	roomPath := "/_matrix/client/v3/rooms/" + url.PathEscape(room)
	for _, j := range []struct {
		srv   *apptest.Server
		token string
	}{{hs2, bobTok}, {hs3, carolTok}} {
		res := j.srv.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room)+"?server_name="+string(hs1.Config.ServerName),
			j.token, map[string]any{})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	aliceSync := &syncFollower{t: t, srv: hs1, token: aliceTok}
	bobSync := &syncFollower{t: t, srv: hs2, token: bobTok}
	carolSync := &syncFollower{t: t, srv: hs3, token: carolTok}
	// EDUs are not queued for servers not known to be in the room yet:
	// hs2 must hold carol's join (relayed by hs1) before bob types.
	joined := func(user string) func(map[string]any) bool {
		return func(b map[string]any) bool {
			for _, e := range timeline(b, room) {
				if e["type"] == "m.room.member" && e["state_key"] == user {
					return true
				}
			}
			return false
		}
	}
	bobSync.until("carol's join on hs2", joined(carol))
	aliceSync.until("carol's join on hs1", joined(carol))

	res = hs1.Do(t, http.MethodPut, roomPath+"/send/m.room.message/m1", aliceTok, map[string]any{"msgtype": "m.text", "body": "hello both"})
	apptest.MustStatus(t, res, http.StatusOK)
	msgID := res.String("event_id")
	carolSync.until("alice's message on hs3", holdsEvent(room, msgID))

	t.Run("typing", func(t *testing.T) {
		res := hs2.Do(t, http.MethodPut, roomPath+"/typing/"+url.PathEscape(bob), bobTok, map[string]any{"typing": true, "timeout": 30000})
		apptest.MustStatus(t, res, http.StatusOK)
		bobTyping := asJSON(map[string]any{"user_ids": []string{bob}})
		for _, f := range []struct {
			name string
			sync *syncFollower
		}{{"hs1", aliceSync}, {"hs3", carolSync}} {
			f.sync.until("bob typing on "+f.name, func(b map[string]any) bool {
				for _, e := range ephemeral(b, room, "m.typing") {
					if asJSON(e["content"]) == bobTyping {
						return true
					}
				}
				return false
			})
		}
	})

	t.Run("receipts", func(t *testing.T) {
		res := hs3.Do(t, http.MethodPost, roomPath+"/receipt/m.read/"+url.PathEscape(msgID), carolTok, map[string]any{})
		apptest.MustStatus(t, res, http.StatusOK)
		for _, f := range []struct {
			name string
			sync *syncFollower
		}{{"hs1", aliceSync}, {"hs2", bobSync}} {
			f.sync.until("carol's read receipt on "+f.name, func(b map[string]any) bool {
				for _, e := range ephemeral(b, room, "m.receipt") {
					content, _ := e["content"].(map[string]any)
					ev, _ := content[msgID].(map[string]any)
					read, _ := ev["m.read"].(map[string]any)
					if _, ok := read[carol]; ok {
						return true
					}
				}
				return false
			})
		}
	})
}
