package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runTool runs parley-bench with args and decodes its last stdout line (the
// scenario's JSON result) into out. It fails the test unless the exit code
// is want.
func runTool(t *testing.T, want int, out any, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != want {
		t.Fatalf("parley-bench %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
	}
	if out != nil {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		last := lines[len(lines)-1]
		dec := json.NewDecoder(strings.NewReader(last))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("last line %q is not the scenario's JSON result: %v\nstdout:\n%s", last, err, stdout.String())
		}
	}
	return stdout.String() + stderr.String()
}

// Every scenario, at a tiny size, against a real Parley over both
// transports: the JSON line's counts must match what was sent. Timings
// are never asserted.
func TestScenariosAgainstParley(t *testing.T) {
	s := apptest.Start(t)
	base := []string{"-server", s.URL, "-password=", "-transport", "longpoll,ws"}

	t.Run("latency", func(t *testing.T) {
		var res latencyResult
		runTool(t, 0, &res, append(base, "-scenario", "latency", "-messages", "5")...)
		if res.Scenario != "latency" || res.Messages != 5 || len(res.Results) != 2 {
			t.Fatalf("result %+v", res)
		}
		for i, tr := range []string{longPoll, webSocket} {
			r := res.Results[i]
			if r.Transport != tr || r.Sent != 5 || r.Received != 5 || r.Errors != 0 || r.Delivery.N != 5 || r.Send.N != 5 {
				t.Errorf("%s: %+v, want 5 sent and delivered, no errors", tr, r)
			}
			if r.Delivery.P50 <= 0 || r.Delivery.P50 > r.Delivery.Max {
				t.Errorf("%s: delivery percentiles out of order: %+v", tr, r.Delivery)
			}
		}
	})

	t.Run("latency sent over the WebSocket", func(t *testing.T) {
		var res latencyResult
		runTool(t, 0, &res, "-server", s.URL, "-password=", "-transport", "ws", "-send-over", "ws", "-scenario", "latency", "-messages", "4")
		if len(res.Results) != 1 || res.Results[0].SendOver != "ws" || res.Results[0].Sent != 4 || res.Results[0].Received != 4 || res.Results[0].Errors != 0 {
			t.Errorf("result %+v, want 4 sent over ws and delivered", res)
		}
	})

	t.Run("throughput", func(t *testing.T) {
		var res throughputResult
		runTool(t, 0, &res, append(base, "-scenario", "throughput", "-senders", "2", "-duration", "300ms", "-verify")...)
		if res.Scenario != "throughput" || len(res.Results) != 2 {
			t.Fatalf("result %+v", res)
		}
		for i, mode := range []string{"separate", "shared"} {
			r := res.Results[i]
			if r.Rooms != mode || r.Senders != 2 || r.Acked == 0 || r.Acked != r.Sent || len(r.Errors) != 0 || r.Send.N != int(r.Acked) {
				t.Errorf("%s: %+v, want every send acknowledged", mode, r)
			}
			if r.Stored == nil || *r.Stored != r.Acked {
				t.Errorf("%s: %v messages stored, %d acknowledged", mode, r.Stored, r.Acked)
			}
		}
	})

	t.Run("fanout", func(t *testing.T) {
		var res fanoutResult
		runTool(t, 0, &res, append(base, "-scenario", "fanout", "-members", "2,3", "-fanout-messages", "3")...)
		if res.Scenario != "fanout" || len(res.Results) != 4 {
			t.Fatalf("result %+v", res)
		}
		for _, r := range res.Results {
			if r.Messages != 3 || r.Expected != 3*r.Members || r.Deliveries != r.Expected || r.LastMember.N != 3 ||
				r.Delivery.N != r.Expected || r.Errors != 0 || r.Duplicates != 0 {
				t.Errorf("%d members over %s: %+v, want every member to hold every message", r.Members, r.Transport, r)
			}
		}
	})

	t.Run("connections", func(t *testing.T) {
		// The server runs in this process, so this process's RSS is its RSS.
		var res connectionsResult
		runTool(t, 0, &res, append(base, "-scenario", "connections", "-connections", "6", "-conn-users", "2",
			"-hold", "1s", "-conn-messages", "3", "-pid", strconv.Itoa(os.Getpid()))...)
		if res.Scenario != "connections" || len(res.Results) != 2 || res.RSSAtStartMB == nil {
			t.Fatalf("result %+v", res)
		}
		for _, r := range res.Results {
			if r.Connections != 6 || r.Users != 2 || r.Held != 6 || r.HeldMin != 6 || r.Errors != 0 ||
				r.Messages != 3 || r.Received != 3 || r.Latency.N != 3 {
				t.Errorf("%s: %+v, want 6 connections held and 3 messages through", r.Transport, r)
			}
			if r.RSSBeforeMB == nil || r.RSSMB == nil || *r.RSSMB <= 0 {
				t.Errorf("%s: RSS not read: %v %v", r.Transport, r.RSSBeforeMB, r.RSSMB)
			}
		}
	})

	t.Run("initial-sync", func(t *testing.T) {
		var res initialSyncResult
		runTool(t, 0, &res, append(base, "-scenario", "initial-sync", "-sync-rooms", "3", "-history", "2,4", "-sync-samples", "2")...)
		if res.Scenario != "initial-sync" || res.Rooms != 3 || len(res.Steps) != 2 {
			t.Fatalf("result %+v", res)
		}
		for i, h := range []int{2, 4} {
			st := res.Steps[i]
			if st.History != h || st.EventsSent != int64(3*h) || st.SendErrors != 0 || st.RoomsInSync != 3 ||
				st.Initial.N != 2 || st.Incremental.N != 2 || st.IncrementalFound != 2 || st.MessagesPage.N != 2 || st.InitialBytes == 0 {
				t.Errorf("history %d: %+v", h, st)
			}
		}
	})
}

// With registration closed, shared-secret registration still works; without
// the secret the tool stops with the server's refusal.
func TestRegistration(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) {
		c.Registration.Mode = config.RegistrationClosed
		c.Registration.SharedSecret = "bench-secret"
	})
	var res latencyResult
	runTool(t, 0, &res, "-server", s.URL, "-shared-secret", "bench-secret", "-scenario", "latency", "-messages", "2", "-transport", "longpoll")
	if len(res.Results) != 1 || res.Results[0].Received != 2 {
		t.Errorf("latency with shared-secret users: %+v", res)
	}
	out := runTool(t, 1, nil, "-server", s.URL, "-scenario", "latency", "-messages", "2")
	if !strings.Contains(out, "M_FORBIDDEN") && !strings.Contains(out, "no registration flow") {
		t.Errorf("closed registration: want the server's refusal in the output:\n%s", out)
	}
	out = runTool(t, 1, nil, "-server", s.URL, "-shared-secret", "wrong", "-scenario", "latency", "-messages", "2")
	if !strings.Contains(out, "M_FORBIDDEN") {
		t.Errorf("wrong shared secret: want M_FORBIDDEN in the output:\n%s", out)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "nope"}, `unknown scenario "nope"`},
		{[]string{"-transport", "carrier-pigeon"}, "neither longpoll nor ws"},
		{[]string{"-rooms", "many"}, "neither separate nor shared"},
		{[]string{"-send-over", "smoke"}, "neither http nor ws"},
		{[]string{"-members", "10,x"}, "-members"},
		{[]string{"-history", "100,10"}, "must grow"},
		{[]string{"-senders", "0"}, "-senders must be at least 1"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-transport", ""}, "name at least one"},
		{[]string{"-hold", "0s"}, "must be positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := runTool(t, 2, nil, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// -start (what `make bench` uses) runs a fresh parley binary, measures
// against it, and stops it; -cpuprofile and -trace reach its serve
// -cpuprofile and -trace.
func TestStartsAFreshParley(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	if out, err := exec.Command("go", "build", "-o", bin, "../parley").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	profile := filepath.Join(dir, "cpu.pprof")
	trace := filepath.Join(dir, "exec.trace")
	var res latencyResult
	runTool(t, 0, &res, "-start", bin, "-start-database", pgtest.NewDatabase(t), "-cpuprofile", profile,
		"-trace", trace, "-scenario", "latency", "-messages", "3", "-transport", "ws", "-password=")
	if len(res.Results) != 1 || res.Results[0].Received != 3 {
		t.Errorf("latency against the started server: %+v", res)
	}
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile written by the stopped server: %v", err)
	}
	if st, err := os.Stat(trace); err != nil || st.Size() == 0 {
		t.Errorf("no execution trace written by the stopped server: %v", err)
	}
}

// Against a homeserver without Parley's WebSocket transport (here Parley
// behind a proxy that answers the upgrade 404 M_UNRECOGNIZED, as other
// servers do), a WebSocket run stops at once with a clear message, and a
// long-poll run works.
func TestServerWithoutWebSocket(t *testing.T) {
	s := apptest.Start(t)
	target, _ := url.Parse(s.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wsConnectPath {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	start := time.Now()
	out := runTool(t, 1, nil, "-server", front.URL, "-password=", "-scenario", "latency", "-messages", "2", "-transport", "ws")
	if !strings.Contains(out, "no WebSocket transport") || !strings.Contains(out, "M_UNRECOGNIZED") {
		t.Errorf("output does not explain the missing transport:\n%s", out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("gave up after %s; a 404 is not worth retrying", d)
	}
	var res latencyResult
	runTool(t, 0, &res, "-server", front.URL, "-password=", "-scenario", "latency", "-messages", "2", "-transport", "longpoll")
	if len(res.Results) != 1 || res.Results[0].Received != 2 {
		t.Errorf("long-poll through the proxy: %+v", res)
	}
}
