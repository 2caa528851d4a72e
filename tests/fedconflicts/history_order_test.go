package fedconflicts

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// link is a TCP relay between the servers' federation listeners that the
// test can cut (a network partition) and heal. TLS passes through it
// untouched: the servers still see each other's certificates.
type link struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// relay listens on a loopback port and forwards every connection to
// target while the link is up; it returns the port's address.
func (l *link) relay(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.forward(c, target)
		}
	}()
	return ln.Addr().String()
}

func (l *link) forward(c net.Conn, target string) {
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	l.conns = append(l.conns, c, up)
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// setCut cuts the link (closing the connections it carries) or heals it.
func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for _, c := range l.conns {
			c.Close()
		}
		l.conns = nil
	}
}

// partitionableFederation is two servers whose federation traffic goes
// through one link, with short retry waits so that the queues deliver
// soon after the link heals.
func partitionableFederation(t *testing.T) ([]*apptest.Server, *link) {
	t.Helper()
	l := &link{}
	relays := map[string]string{} // real federation address → relay
	var mu sync.Mutex
	srvs := apptest.StartFederation(t, 2, func(cfg *config.Config) {
		mu.Lock()
		defer mu.Unlock()
		for name, addr := range cfg.Federation.Resolve {
			if relays[addr] == "" {
				relays[addr] = l.relay(t, addr)
			}
			cfg.Federation.Resolve[name] = relays[addr]
		}
		cfg.Federation.Queue.BackoffInitial = 100 * time.Millisecond
		cfg.Federation.Queue.BackoffMax = 500 * time.Millisecond
	})
	return srvs, l
}

// historyIDs pages through room's history on a's server with pages of
// limit events in dir ("b" from the end, "f" from the start) and returns
// the event ids, oldest first, failing on an event seen twice.
func (a account) historyIDs(t *testing.T, room, dir string, limit int) ([]string, error) {
	t.Helper()
	var out []string
	from := ""
	for range 200 {
		path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/messages?dir=%s&limit=%d", esc(room), dir, limit)
		if from != "" {
			path += "&from=" + esc(from)
		}
		res := a.do(t, http.MethodGet, path, nil)
		if res.Status != http.StatusOK {
			return nil, fmt.Errorf("status %d %s", res.Status, res.Raw)
		}
		chunk, _ := res.Body["chunk"].([]any)
		for _, c := range chunk {
			ev, _ := c.(map[string]any)
			eid, _ := ev["event_id"].(string)
			if slices.Contains(out, eid) {
				return nil, fmt.Errorf("%s twice while paging %s", eid, dir)
			}
			out = append(out, eid)
		}
		end, _ := res.Body["end"].(string)
		if end == "" || len(chunk) == 0 {
			if dir == "b" {
				slices.Reverse(out)
			}
			return out, nil
		}
		from = end
	}
	return nil, errors.New("paging did not end")
}

// TestBothSidesOfAForkShowTheSameHistory: while the two servers cannot
// reach each other, alice (hs1) and bob (hs2) each send messages — two
// branches of the room's graph whose events have the same depths pairwise.
// Once the link heals and the fork is closed, both servers' /messages
// list the same events in the same order, paged with small pages in
// both directions; each server received the other's branch after its own,
// so an order by arrival would differ.
func TestBothSidesOfAForkShowTheSameHistory(t *testing.T) {
	srvs, l := partitionableFederation(t)
	alice := newAccount(t, srvs[0], "alice")
	bob := newAccount(t, srvs[1], "bob")
	room := alice.must(t, http.MethodPost, "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).String("room_id")
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name=hs1.test", map[string]any{})
	sameState(t, room, alice, bob)

	l.setCut(true)
	const n = 4
	var want []string
	for i := range n {
		for _, c := range []struct {
			who  account
			name string
		}{{alice, "alice"}, {bob, "bob"}} {
			body := fmt.Sprintf("%s %d", c.name, i)
			c.who.must(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/fork%d", esc(room), i),
				map[string]any{"msgtype": "m.text", "body": body})
			want = append(want, body)
		}
	}
	l.setCut(false)
	for _, a := range []account{alice, bob} {
		waitFor(t, "both branches on "+string(a.srv.Name), func() (bool, string) {
			got := a.bodies(t, room)
			for _, w := range want {
				if !slices.Contains(got, w) {
					return false, fmt.Sprintf("%v", got)
				}
			}
			return true, ""
		})
	}
	// A message on top of both branches closes the fork.
	last := alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/merge",
		map[string]any{"msgtype": "m.text", "body": "merged"}).String("event_id")
	waitFor(t, "the merge on hs2", func() (bool, string) {
		res := bob.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(last), nil)
		return res.Status == http.StatusOK, string(res.Raw)
	})

	var reference []string
	for _, a := range []account{alice, bob} {
		for _, p := range []struct {
			dir   string
			limit int
		}{{"b", 3}, {"f", 3}, {"b", 1}, {"f", 2}} {
			got, err := a.historyIDs(t, room, p.dir, p.limit)
			if err != nil {
				t.Fatalf("%s, dir=%s limit=%d: %v", a.srv.Name, p.dir, p.limit, err)
			}
			if reference == nil {
				reference = got
				if got[len(got)-1] != last {
					t.Fatalf("%s: the history does not end with the merge", a.srv.Name)
				}
				continue
			}
			if !slices.Equal(got, reference) {
				t.Fatalf("%s, dir=%s limit=%d:\n%v\nwant (hs1, dir=b limit=3)\n%v", a.srv.Name, p.dir, p.limit, got, reference)
			}
		}
	}
}
