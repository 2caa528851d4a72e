package clientapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// idleSyncServer starts a server without presence (another user's
// request would move its stream and end an idle wait) and returns it,
// a user's token and the token of their current position: a long-poll
// from it waits.
func idleSyncServer(t *testing.T) (s *apptest.Server, token, since, room string) {
	t.Helper()
	s = apptest.Start(t, func(c *config.Config) { c.Presence.Enabled = false })
	_, token = s.Register(t, "poller", "pw-poller-1")
	room = newRoom(t, s, token, obj{"name": "parked"})
	since = mustSync(t, s, token, "").NextBatch
	for i := 0; ; i++ {
		next := mustSync(t, s, token, since).NextBatch
		if next == since {
			return s, token, since, room
		}
		if i == 10 {
			t.Fatalf("the token still moves after %d syncs", i)
		}
		since = next
	}
}

// rawConn is a client connection on which the test writes requests by
// hand (pipelining, Connection: close, HTTP/1.0) and reads responses.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, s *apptest.Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// request is the text of a GET with token; extra are header lines.
func request(proto, path, token string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s %s\r\nHost: parley.test\r\nAuthorization: Bearer %s\r\n", path, proto, token)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func (c *rawConn) send(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
}

// read reads one response and its body.
func (c *rawConn) read(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, body
}

// waitFor polls cond (a gauge of the server) until it holds; the bound
// only keeps a broken build from hanging the suite.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitParked(t *testing.T, s *apptest.Server, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d parked long-polls", n), func() bool { return s.App.Client().LongPollStats().Parked == n })
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("answer\n%s\nwant\n%s", gb, wb)
	}
}

// syncRequestsOK reads the client listener's count of 200 answers to
// /sync from the metrics endpoint.
func syncRequestsOK(t *testing.T, s *apptest.Server) string {
	t.Helper()
	for _, line := range metricLines(t, s) {
		if strings.HasPrefix(line, "parley_http_requests_total{") && strings.Contains(line, `route="/_matrix/client/v3/sync"`) &&
			strings.Contains(line, `status="200"`) && strings.Contains(line, `api="client"`) {
			return line[strings.LastIndex(line, " ")+1:]
		}
	}
	return "0"
}

// metricLines reads the metrics endpoint, a line each.
func metricLines(t *testing.T, s *apptest.Server) []string {
	t.Helper()
	res, err := http.Get("http://" + s.App.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(raw), "\n")
}

// TestParkedLongPollAnswersAsBefore: a waiting long-poll is parked (no
// goroutine of net/http holds it) and answers a message sent meanwhile,
// and on time-out the same JSON as a sync that does not wait, with the
// middlewares' headers and a Content-Length; the access metrics count it;
// the connection then serves the next request.
func TestParkedLongPollAnswersAsBefore(t *testing.T) {
	s, token, since, room := idleSyncServer(t)
	c := dialRaw(t, s)
	okBefore := syncRequestsOK(t, s)

	c.send(t, request("HTTP/1.1", syncQuery(since, "timeout", "60000"), token))
	waitParked(t, s, 1)
	event := sendText(t, s, token, room, "t1", "through the parked poll")
	res, body := c.read(t)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	for name, want := range map[string]string{
		"Content-Type":                "application/json",
		"Access-Control-Allow-Origin": "*",
		"Content-Length":              fmt.Sprint(len(body)),
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if res.Header.Get("X-Request-Id") == "" || res.Close {
		t.Errorf("X-Request-Id %q, close %v: want an id and a kept-alive connection", res.Header.Get("X-Request-Id"), res.Close)
	}
	var woken syncBody
	if err := json.Unmarshal(body, &woken); err != nil {
		t.Fatal(err)
	}
	if evs := woken.Rooms.Join[room].Timeline.Events; len(evs) != 1 || evs[0].EventID != event {
		t.Fatalf("timeline %+v, want the one message %s", evs, event)
	}
	if got := syncRequestsOK(t, s); got == okBefore {
		t.Errorf("the parked long-poll's 200 was not counted (%s before and after)", got)
	}

	// Same connection: a long-poll that times out answers what a sync
	// that does not wait answers.
	since = woken.NextBatch
	c.send(t, request("HTTP/1.1", syncQuery(since, "timeout", "100"), token))
	res, parkedBody := c.read(t)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d after the time-out: %s", res.StatusCode, parkedBody)
	}
	direct := s.Do(t, http.MethodGet, syncQuery(since, "timeout", "0"), token, nil)
	apptest.MustStatus(t, direct, http.StatusOK)
	sameJSON(t, parkedBody, direct.Raw)
	// The counts follow the write of the answer the client has read.
	waitFor(t, "two parked long-polls answered and handed back", func() bool {
		st := s.App.Client().LongPollStats()
		return st.Answered >= 2 && st.HandedBack >= 2 && st.Parked == 0
	})
}

// TestParkedLongPollKeepsAPipelinedRequest: a request sent behind the
// long-poll on the same connection, before its answer, is served after it.
func TestParkedLongPollKeepsAPipelinedRequest(t *testing.T) {
	s, token, since, _ := idleSyncServer(t)
	c := dialRaw(t, s)
	answered := s.App.Client().LongPollStats().Answered
	c.send(t, request("HTTP/1.1", syncQuery(since, "timeout", "200"), token)+
		request("HTTP/1.1", "/_matrix/client/versions", token))
	res, body := c.read(t)
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"next_batch"`)) {
		t.Fatalf("first answer %d %s, want the sync's", res.StatusCode, body)
	}
	res, body = c.read(t)
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"versions"`)) {
		t.Fatalf("second answer %d %s, want /versions", res.StatusCode, body)
	}
	if got := s.App.Client().LongPollStats().Answered; got != answered+1 {
		t.Fatalf("%d parked long-polls answered, want %d: the long-poll was not parked", got, answered+1)
	}
}

// TestParkedLongPollClosesWhenAsked: Connection: close and HTTP/1.0
// end the connection after the answer, which says so.
func TestParkedLongPollClosesWhenAsked(t *testing.T) {
	s, token, since, _ := idleSyncServer(t)
	for _, tc := range []struct {
		name, proto string
		extra       []string
	}{
		{"connection close", "HTTP/1.1", []string{"Connection: close"}},
		{"HTTP/1.0", "HTTP/1.0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := s.App.Client().LongPollStats().Closed
			c := dialRaw(t, s)
			c.send(t, request(tc.proto, syncQuery(since, "timeout", "100"), token, tc.extra...))
			res, body := c.read(t)
			if res.StatusCode != http.StatusOK || !res.Close {
				t.Fatalf("status %d, close %v (%s): want 200 and Connection: close", res.StatusCode, res.Close, body)
			}
			if n, err := c.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("read %d bytes, %v after the answer: want the end of the connection", n, err)
			}
			if got := s.App.Client().LongPollStats().Closed; got != closed+1 {
				t.Fatalf("%d parked connections closed, want %d", got, closed+1)
			}
		})
	}
}

// TestParkedLongPollOfAGoneClientEnds: a client that disconnects while
// its long-poll is parked leaves nothing behind once the wait ends.
func TestParkedLongPollOfAGoneClientEnds(t *testing.T) {
	s, token, since, _ := idleSyncServer(t)
	c := dialRaw(t, s)
	answered := s.App.Client().LongPollStats().Answered
	c.send(t, request("HTTP/1.1", syncQuery(since, "timeout", "300"), token))
	waitParked(t, s, 1)
	c.Close()
	waitFor(t, "the gone client's long-poll to end", func() bool {
		st := s.App.Client().LongPollStats()
		return st.Parked == 0 && st.Answered == answered+1
	})
}

// TestShutdownAnswersParkedLongPolls: a parked long-poll answers when the
// server shuts down, and its connection closes.
func TestShutdownAnswersParkedLongPolls(t *testing.T) {
	s, token, since, _ := idleSyncServer(t)
	c := dialRaw(t, s)
	c.send(t, request("HTTP/1.1", syncQuery(since, "timeout", "600000"), token))
	waitParked(t, s, 1)
	stopped := make(chan struct{})
	go func() { s.Stop(t); close(stopped) }()
	res, body := c.read(t)
	var got syncBody
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.NextBatch != since {
		t.Fatalf("status %d %s: want the empty answer at %s", res.StatusCode, body, since)
	}
	if !res.Close {
		t.Error("the answer during shutdown does not close the connection")
	}
	<-stopped
}

// TestParkedLongPollsHoldNoGoroutine: N parked long-polls add about no
// goroutine to the server (they held two each on net/http's path).
func TestParkedLongPollsHoldNoGoroutine(t *testing.T) {
	const n = 50
	s, token, since, _ := idleSyncServer(t)
	before := runtime.NumGoroutine()
	for range n {
		dialRaw(t, s).send(t, request("HTTP/1.1", syncQuery(since, "timeout", "600000"), token))
	}
	waitParked(t, s, n)
	if delta := runtime.NumGoroutine() - before; delta > n/10 {
		t.Fatalf("%d goroutines more with %d parked long-polls, want about none", delta, n)
	}
	if got := metricValue(t, s, "parley_client_longpolls_parked"); got != fmt.Sprint(n) {
		t.Fatalf("parley_client_longpolls_parked %s, want %d", got, n)
	}
}

// metricValue reads an unlabelled metric from the metrics endpoint.
func metricValue(t *testing.T, s *apptest.Server, name string) string {
	t.Helper()
	for _, line := range metricLines(t, s) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestParkedLongPollKeepsAnHTTP10ConnectionWhenAsked: an HTTP/1.0 client
// that sends Connection: keep-alive is told the connection is kept, and
// it serves the next request.
func TestParkedLongPollKeepsAnHTTP10ConnectionWhenAsked(t *testing.T) {
	s, token, since, _ := idleSyncServer(t)
	c := dialRaw(t, s)
	handedBack := s.App.Client().LongPollStats().HandedBack
	c.send(t, request("HTTP/1.0", syncQuery(since, "timeout", "100"), token, "Connection: keep-alive"))
	res, body := c.read(t)
	if res.StatusCode != http.StatusOK || res.Close || res.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("status %d, close %v, Connection %q (%s): want 200 and keep-alive",
			res.StatusCode, res.Close, res.Header.Get("Connection"), body)
	}
	// The count follows the write of the answer the client has read.
	waitFor(t, "the connection handed back", func() bool {
		return s.App.Client().LongPollStats().HandedBack == handedBack+1
	})
	c.send(t, request("HTTP/1.0", "/_matrix/client/versions", token, "Connection: keep-alive"))
	if res, body = c.read(t); res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"versions"`)) {
		t.Fatalf("next request %d %s, want /versions", res.StatusCode, body)
	}
}
