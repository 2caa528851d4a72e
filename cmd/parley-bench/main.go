// Command parley-bench is a load tool for Matrix homeservers. It speaks only
// the standard Client-Server API (plus Parley's WebSocket transport when
// asked), so it runs unchanged against any homeserver: it registers its
// own users, creates its rooms, and measures
//
//   - latency: send → delivery to a receiver waiting in /sync (long-poll or
//     WebSocket), and the send's round trip;
//   - throughput: acknowledged sends per second of C concurrent senders, each
//     in its own room and all in one shared room;
//   - fanout: time until every member of a G-member room holds a message;
//   - connections: S idle sync connections held at once, the server's RSS,
//     and a message's latency through the crowd;
//   - initial-sync: initial and incremental sync and a /messages page of a
//     user in R rooms as the rooms' history grows.
//
// Each scenario prints a table and then one JSON line with its figures.
// With -start it first starts a fresh Parley binary (managed PostgreSQL in
// a temporary data directory); see `make bench`.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// scenarios in the order the standard set runs them.
var scenarioNames = []string{"latency", "throughput", "fanout", "connections", "initial-sync"}

// config is the command line.
type options struct {
	server           string
	scenarios        []string
	sharedSecret     string
	regToken         string
	password         string
	prefix           string
	pid              int
	transports       []string
	setupConcurrency int
	connSetup        time.Duration
	pollTimeout      time.Duration
	verify           bool   // count what the server stored after throughput
	lazyMembers      bool   // lazy_load_members in the receivers' sync filter
	sendOver         string // latency: http, or ws (request frames)

	messages int           // latency: messages sent
	interval time.Duration // latency: pause between sends

	senders   int           // throughput: concurrent senders
	duration  time.Duration // throughput: how long each mode runs
	roomModes []string      // throughput: separate, shared

	members        []int // fanout: room sizes
	fanoutMessages int

	connections  int           // connections: idle sync connections per transport
	hold         time.Duration // connections: how long they are held
	connUsers    int           // connections: distinct users the connections belong to
	connMessages int           // connections: messages sent through the crowd

	syncRooms   int   // initial-sync: rooms the user is in
	history     []int // initial-sync: history sizes per room, growing
	syncSamples int   // initial-sync: repetitions of each measurement

	start         string // a parley binary to start fresh
	startDatabase string // its database.url ("" = managed PostgreSQL)
	cpuProfile    string // passed to the started parley as serve -cpuprofile
	traceFile     string // passed to the started parley as serve -trace
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var c options
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: parley-bench [flags]\n\nScenarios: %s (standard = all, in this order).\n\n",
			strings.Join(scenarioNames, ", "))
		fs.PrintDefaults()
	}
	scenarios := fs.String("scenario", "standard", "comma-separated scenarios to run, or standard")
	transports := fs.String("transport", "longpoll,ws", "sync transports: longpoll, ws (Parley's WebSocket transport), or both comma-separated")
	roomModes := fs.String("rooms", "separate,shared", "throughput: senders each in their own room (separate), all in one room (shared), or both")
	members := fs.String("members", "100,500", "fanout: room sizes, comma-separated")
	history := fs.String("history", "10,100", "initial-sync: events of history per room, growing, comma-separated")
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8008", "the homeserver's client API base URL")
	fs.StringVar(&c.sharedSecret, "shared-secret", "", "register users with shared-secret registration (/_synapse/admin/v1/register)")
	fs.StringVar(&c.regToken, "registration-token", "", "registration token for m.login.registration_token")
	fs.StringVar(&c.password, "password", "parley-bench-password", "password of the registered users; empty registers without one (cheaper, where the server allows it)")
	fs.StringVar(&c.prefix, "prefix", "", "localpart prefix of the registered users (default: random per run)")
	fs.IntVar(&c.pid, "pid", 0, "the server's process id, to read its RSS from /proc/<pid>/status")
	fs.IntVar(&c.setupConcurrency, "setup-concurrency", 8, "concurrent requests while registering users and filling rooms")
	fs.BoolVar(&c.verify, "verify", false, "throughput: afterwards, count the messages stored with /messages (a check of the tool and the server)")
	fs.BoolVar(&c.lazyMembers, "lazy-members", true, "receivers sync with lazy_load_members, as Element does")
	fs.StringVar(&c.sendOver, "send-over", "http", "latency: send over http, or ws (request frames of Parley's WebSocket transport)")
	fs.IntVar(&c.messages, "messages", 500, "latency: messages sent, one at a time")
	fs.DurationVar(&c.interval, "interval", 0, "latency: pause between one delivery and the next send")
	fs.IntVar(&c.senders, "senders", 16, "throughput: concurrent senders")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "throughput: how long each room mode runs")
	fs.IntVar(&c.fanoutMessages, "fanout-messages", 20, "fanout: messages sent, one at a time, each awaited by every member")
	fs.IntVar(&c.connections, "connections", 20000, "connections: idle sync connections per transport")
	fs.DurationVar(&c.hold, "hold", time.Minute, "connections: how long the idle connections are held")
	fs.IntVar(&c.connUsers, "conn-users", 100, "connections: distinct users the idle connections belong to")
	fs.IntVar(&c.connMessages, "conn-messages", 100, "connections: messages sent through the crowd")
	fs.DurationVar(&c.pollTimeout, "poll-timeout", 0, "connections: the crowd's long-poll timeout (default 30s, as Element): each answers empty and polls again after it, so an idle crowd of S costs S/timeout syncs a second")
	fs.DurationVar(&c.connSetup, "conn-setup", 0, "connections: how long the crowd may take to connect before it is held as it is (default 1m + 10ms per connection)")
	fs.IntVar(&c.syncRooms, "sync-rooms", 500, "initial-sync: rooms the user is in")
	fs.IntVar(&c.syncSamples, "sync-samples", 5, "initial-sync: repetitions of each measurement")
	fs.StringVar(&c.start, "start", "", "start this parley binary first, on a temporary data directory, and stop it at the end")
	fs.StringVar(&c.startDatabase, "start-database", "", "with -start: database.url of the started server (default: a managed PostgreSQL in the data directory)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "with -start: write the server's CPU profile to this file (parley serve -cpuprofile)")
	fs.StringVar(&c.traceFile, "trace", "", "with -start: write the server's execution trace to this file (parley serve -trace; go tool trace)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	for _, s := range splitList(*scenarios) {
		switch {
		case s == "standard" || s == "all":
			c.scenarios = append(c.scenarios, scenarioNames...)
		case slices.Contains(scenarioNames, s):
			c.scenarios = append(c.scenarios, s)
		default:
			errs = append(errs, fmt.Errorf("-scenario: unknown scenario %q", s))
		}
	}
	c.transports = splitList(*transports)
	for _, t := range c.transports {
		if t != longPoll && t != webSocket {
			errs = append(errs, fmt.Errorf("-transport: %q is neither longpoll nor ws", t))
		}
	}
	if c.sendOver != "http" && c.sendOver != webSocket {
		errs = append(errs, fmt.Errorf("-send-over: %q is neither http nor ws", c.sendOver))
	}
	c.roomModes = splitList(*roomModes)
	for _, m := range c.roomModes {
		if m != "separate" && m != "shared" {
			errs = append(errs, fmt.Errorf("-rooms: %q is neither separate nor shared", m))
		}
	}
	var err error
	if c.members, err = intList(*members); err != nil {
		errs = append(errs, fmt.Errorf("-members: %w", err))
	}
	if c.history, err = intList(*history); err != nil {
		errs = append(errs, fmt.Errorf("-history: %w", err))
	}
	for i := 1; i < len(c.history); i++ {
		if c.history[i] < c.history[i-1] {
			errs = append(errs, errors.New("-history: sizes must grow"))
		}
	}
	if len(c.transports) == 0 {
		errs = append(errs, errors.New("-transport: name at least one"))
	}
	if len(c.roomModes) == 0 {
		errs = append(errs, errors.New("-rooms: name at least one"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"messages", c.messages}, {"senders", c.senders}, {"fanout-messages", c.fanoutMessages},
		{"connections", c.connections}, {"conn-users", c.connUsers}, {"conn-messages", c.connMessages},
		{"sync-rooms", c.syncRooms}, {"sync-samples", c.syncSamples}, {"setup-concurrency", c.setupConcurrency}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("-%s must be at least 1", f.name))
		}
	}
	if c.duration <= 0 || c.hold <= 0 {
		errs = append(errs, errors.New("-duration and -hold must be positive"))
	}
	if c.prefix == "" {
		c.prefix = "pb" + strings.ToLower(rand.Text()[:6])
	}
	return c, errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// bench is one run: the configuration, the client and the output.
type bench struct {
	cfg options
	c   *client
	reg *registrar
	o   *output
	// rssAtStart is the server's RSS before the first scenario (-pid).
	rssAtStart *float64
}

// run is main without the process: the tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "parley-bench:", err)
		return 2
	}
	o := &output{out: stdout, log: stderr}
	if cfg.start != "" {
		srv, err := startServer(ctx, cfg, o)
		if err != nil {
			fmt.Fprintln(stderr, "parley-bench:", err)
			return 1
		}
		defer srv.stop(o)
		cfg.server, cfg.pid = srv.url, srv.pid
	}
	c := newClient(cfg.server)
	b := &bench{cfg: cfg, c: c, o: o, reg: &registrar{c: c, sharedSecret: cfg.sharedSecret,
		regToken: cfg.regToken, password: cfg.password, prefix: cfg.prefix, concurrency: cfg.setupConcurrency,
		filter: syncFilter(cfg.lazyMembers)}}
	b.rssAtStart = b.rssMB()
	for _, s := range cfg.scenarios {
		o.progress("scenario %s against %s", s, cfg.server)
		var res any
		switch s {
		case "latency":
			res, err = b.latency(ctx)
		case "throughput":
			res, err = b.throughput(ctx)
		case "fanout":
			res, err = b.fanout(ctx)
		case "connections":
			res, err = b.connectionsScenario(ctx)
		case "initial-sync":
			res, err = b.initialSync(ctx)
		}
		if err == nil {
			err = o.result(res)
		}
		if err != nil {
			fmt.Fprintf(stderr, "parley-bench: %s: %v\n", s, err)
			return 1
		}
	}
	return 0
}
