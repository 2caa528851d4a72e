package clientapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

// syncOnce is mustSync for goroutines other than the test's: it returns
// errors instead of failing the test.
func syncOnce(s *apptest.Server, token, since string, extra ...string) (syncBody, error) {
	var body syncBody
	req, err := http.NewRequest(http.MethodGet, s.URL+syncQuery(since, extra...), nil)
	if err != nil {
		return body, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return body, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return body, err
	}
	if res.StatusCode != http.StatusOK {
		return body, fmt.Errorf("sync: %d %s", res.StatusCode, raw)
	}
	return body, json.Unmarshal(raw, &body)
}

// sendOnce is sendText for goroutines other than the test's.
func sendOnce(s *apptest.Server, token, room, txn, text string) error {
	b, _ := json.Marshal(obj{"msgtype": "m.text", "body": text})
	req, err := http.NewRequest(http.MethodPut, s.URL+v3+"/rooms/"+url.PathEscape(room)+"/send/m.room.message/"+txn, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(res.Body)
		return fmt.Errorf("send: %d %s", res.StatusCode, raw)
	}
	return nil
}

// TestSyncPropertyConcurrentSendersAndReceivers is the guarantee of /sync:
// while several senders write to several shared rooms concurrently, every
// receiver chaining incremental long-poll syncs sees every event of its
// rooms exactly once, in one per-room order that all receivers agree on
// (and that keeps each sender's order), and never an event of a room it is
// not in. The test ends when every receiver has seen every event of its
// rooms, or fails at a deadline.
func TestSyncPropertyConcurrentSendersAndReceivers(t *testing.T) {
	const (
		users            = 4 // user i creates room i; user i+1 joins it
		messagesPerSend  = 15
		receiversPerUser = 2
	)
	s := apptest.Start(t)
	type member struct {
		id, name string
		token    string
		rooms    []string
	}
	var members []*member
	for u := range users {
		name := fmt.Sprintf("user%d", u)
		uid, tok := s.Register(t, name, pw)
		members = append(members, &member{id: uid, name: name, token: tok})
	}
	type sender struct{ token, room, name string }
	var senders []sender
	roomIDs := make([]string, users)
	for u, m := range members {
		room := newRoom(t, s, m.token, obj{"preset": "public_chat"})
		roomIDs[u] = room
		guest := members[(u+1)%users]
		roomPost(t, s, guest.token, room, "join", nil)
		for _, who := range []*member{m, guest} {
			who.rooms = append(who.rooms, room)
			st, _ := mustLogin(t, s, who.name, pw, nil)
			senders = append(senders, sender{token: st, room: room, name: fmt.Sprintf("%s-in-%d", who.name, u)})
		}
	}

	// Every receiver starts from a position before the first send.
	var receivers []*propertyReceiver
	for _, m := range members {
		for range receiversPerUser {
			tok, _ := mustLogin(t, s, m.name, pw, nil)
			receivers = append(receivers, &propertyReceiver{
				user: m.id, rooms: m.rooms, token: tok,
				since: mustSync(t, s, tok, "").NextBatch, order: map[string][]string{},
			})
		}
	}

	filter := `{"room":{"timeline":{"limit":1000,"types":["m.room.message"]}}}`
	expected := 2 * messagesPerSend // two senders per room
	errs := make(chan error, len(receivers)+len(senders))
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for _, rc := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rc.receive(s, filter, expected, deadline); err != nil {
				errs <- err
			}
		}()
	}
	for _, sd := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= messagesPerSend; i++ {
				if err := sendOnce(s, sd.token, sd.room, fmt.Sprintf("txn%d", i), fmt.Sprintf("%s#%d", sd.name, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Every receiver of a room saw the same order.
	for _, room := range roomIDs {
		var first []string
		for _, rc := range receivers {
			got, ok := rc.order[room]
			if !ok {
				continue
			}
			if first == nil {
				first = got
			} else if !slices.Equal(first, got) {
				t.Errorf("receivers of %s disagree on its order", room)
			}
		}
		if len(first) != expected {
			t.Errorf("room %s: %d events seen, want %d", room, len(first), expected)
		}
	}
}

// propertyReceiver is one device chaining syncs in the property test.
type propertyReceiver struct {
	user  string
	rooms []string
	token string
	since string
	order map[string][]string // room → event ids in the order seen
}

// receive chains long-poll syncs until every room of the receiver's user
// has expected messages, checking each batch as it comes: no room it is
// not in, no limited timeline, no event twice, each sender's messages in
// sending order.
func (rc *propertyReceiver) receive(s *apptest.Server, filter string, expected int, deadline time.Time) error {
	seen := map[string]bool{}
	lastOf := map[string]int{} // sender name → its last message number
	for {
		done := true
		for _, r := range rc.rooms {
			done = done && len(rc.order[r]) == expected
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("receiver of %s: deadline with %d events seen", rc.user, len(seen))
		}
		b, err := syncOnce(s, rc.token, rc.since, "timeout", "5000", "filter", filter)
		if err != nil {
			return err
		}
		rc.since = b.NextBatch
		for room, jr := range b.Rooms.Join {
			if !slices.Contains(rc.rooms, room) {
				return fmt.Errorf("%s saw room %s it is not in", rc.user, room)
			}
			if jr.Timeline.Limited {
				return fmt.Errorf("%s: timeline of %s limited", rc.user, room)
			}
			for _, ev := range jr.Timeline.Events {
				if seen[ev.EventID] {
					return fmt.Errorf("%s saw %s twice", rc.user, ev.EventID)
				}
				seen[ev.EventID] = true
				body, _ := ev.Content["body"].(string)
				name, num, _ := strings.Cut(body, "#")
				n, _ := strconv.Atoi(num)
				if n != lastOf[name]+1 {
					return fmt.Errorf("%s: %q after message %d of that sender", rc.user, body, lastOf[name])
				}
				lastOf[name] = n
				rc.order[room] = append(rc.order[room], ev.EventID)
			}
		}
	}
}
