package clientapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
// while several senders write to several rooms concurrently, every
// receiver chaining incremental long-poll syncs sees every event of its
// rooms exactly once, each sender's events in the order they were sent,
// and never an event of a room it is not in. The test ends when every
// receiver has seen every event of its rooms, or fails at a deadline.
func TestSyncPropertyConcurrentSendersAndReceivers(t *testing.T) {
	const (
		users            = 3
		roomsPerUser     = 2
		sendersPerRoom   = 2
		messagesPerSend  = 15
		receiversPerUser = 2
	)
	s := apptest.Start(t)
	type member struct {
		id     string
		tokens []string // receivers' devices
		rooms  []string
	}
	type sender struct {
		token, room, name string
	}
	var members []*member
	var senders []sender
	roomOwner := map[string]string{}
	for u := range users {
		name := fmt.Sprintf("user%d", u)
		uid, tok := s.Register(t, name, pw)
		m := &member{id: uid}
		for range receiversPerUser {
			rt, _ := mustLogin(t, s, name, pw, nil)
			m.tokens = append(m.tokens, rt)
		}
		for r := range roomsPerUser {
			room := newRoom(t, s, tok, nil)
			m.rooms = append(m.rooms, room)
			roomOwner[room] = uid
			for k := range sendersPerRoom {
				st, _ := mustLogin(t, s, name, pw, nil)
				senders = append(senders, sender{token: st, room: room, name: fmt.Sprintf("u%dr%ds%d", u, r, k)})
			}
		}
		members = append(members, m)
	}
	// Every receiver starts from a position before the first send.
	type receiver struct {
		user  *member
		token string
		since string
	}
	var receivers []*receiver
	for _, m := range members {
		for _, tok := range m.tokens {
			receivers = append(receivers, &receiver{user: m, token: tok, since: mustSync(t, s, tok, "").NextBatch})
		}
	}

	filter := `{"room":{"timeline":{"limit":1000,"types":["m.room.message"]}}}`
	expected := sendersPerRoom * messagesPerSend
	errs := make(chan error, len(receivers)+len(senders))
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for _, rc := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]bool{}  // event ids
			lastOf := map[string]int{} // sender name → last message number
			count := map[string]int{}  // room → messages seen
			mine := map[string]bool{}
			for _, r := range rc.user.rooms {
				mine[r] = true
			}
			for {
				done := true
				for _, r := range rc.user.rooms {
					done = done && count[r] == expected
				}
				if done {
					return
				}
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("receiver of %s: deadline with %v of %d per room", rc.user.id, count, expected)
					return
				}
				b, err := syncOnce(s, rc.token, rc.since, "timeout", "5000", "filter", filter)
				if err != nil {
					errs <- err
					return
				}
				rc.since = b.NextBatch
				for room, jr := range b.Rooms.Join {
					if !mine[room] {
						errs <- fmt.Errorf("%s saw room %s of %s", rc.user.id, room, roomOwner[room])
						return
					}
					if jr.Timeline.Limited {
						errs <- fmt.Errorf("%s: timeline of %s limited", rc.user.id, room)
						return
					}
					for _, ev := range jr.Timeline.Events {
						if seen[ev.EventID] {
							errs <- fmt.Errorf("%s saw %s twice", rc.user.id, ev.EventID)
							return
						}
						seen[ev.EventID] = true
						body, _ := ev.Content["body"].(string)
						name, num, _ := strings.Cut(body, "#")
						n, _ := strconv.Atoi(num)
						if !strings.Contains(name, "s") || n != lastOf[name]+1 {
							errs <- fmt.Errorf("%s: %q after message %d of that sender", rc.user.id, body, lastOf[name])
							return
						}
						lastOf[name] = n
						count[room]++
					}
				}
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
}
