package queue_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	hs1 = id.ServerName("hs1.test")
	hs2 = id.ServerName("hs2.test")
	hs3 = id.ServerName("hs3.test")
)

// receiver is a remote server's PUT /send/{txnId} over real TLS: it
// records what it processed, answers a retried transaction id from its
// record without processing it again (as a real server must), and fails
// on request.
type receiver struct {
	srv *httptest.Server

	mu          sync.Mutex
	failNext    int  // answer 503 to this many requests
	down        bool // answer 503 to every request
	status      int  // when non-zero, answer this status (a refusal)
	inFlight    int
	maxInFlight int
	attempts    []string // transaction ids, one per request
	seen        map[string]bool
	txns        []queue.TxnBody // processed, in order
	changed     chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{seen: map[string]bool{}, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	txnID, ok := strings.CutPrefix(req.URL.Path, "/_matrix/federation/v1/send/")
	if !ok || req.Method != http.MethodPut {
		http.Error(w, `{"errcode":"M_UNRECOGNIZED"}`, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.attempts = append(r.attempts, txnID)
	status := http.StatusOK
	switch {
	case r.status != 0:
		status = r.status
	case r.down:
		status = http.StatusServiceUnavailable
	case r.failNext > 0:
		r.failNext--
		status = http.StatusServiceUnavailable
	case !r.seen[txnID]:
		var b queue.TxnBody
		if err := json.Unmarshal(body, &b); err != nil {
			status = http.StatusBadRequest
			break
		}
		r.seen[txnID] = true
		r.txns = append(r.txns, b)
	}
	r.inFlight--
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = w.Write([]byte(`{"pdus":{}}`))
	} else {
		_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"test"}`))
	}
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// pdu is the part of a received PDU the tests look at.
type pdu struct {
	Type     string `json:"type"`
	Sender   string `json:"sender"`
	RoomID   string `json:"room_id"`
	StateKey *string
	Content  struct {
		Body       string `json:"body"`
		Membership string `json:"membership"`
	} `json:"content"`
}

// pdus lists every processed PDU in order of arrival.
func (r *receiver) pdus(t testing.TB) []pdu {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pdu
	for _, txn := range r.txns {
		for _, raw := range txn.PDUs {
			var p pdu
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// bodies lists the bodies of the processed messages in order.
func (r *receiver) bodies(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, p := range r.pdus(t) {
		if p.Type == "m.room.message" {
			out = append(out, p.Content.Body)
		}
	}
	return out
}

func (r *receiver) edus() []queue.EDU {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []queue.EDU
	for _, txn := range r.txns {
		out = append(out, txn.EDUs...)
	}
	return out
}

// waitFor polls cond each time the receiver answers, up to a deadline.
func (r *receiver) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// transport speaks PUT /send/{txnId} to the receivers over TLS, as
// fedclient does to a real server.
type transport struct {
	client *http.Client
	urls   map[id.ServerName]string
}

func (tr *transport) SendTransaction(ctx context.Context, dest id.ServerName, txnID string, body *queue.TxnBody) (*queue.TxnResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	base, ok := tr.urls[dest]
	if !ok {
		return nil, fmt.Errorf("no route to %s", dest)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/_matrix/federation/v1/send/"+url.PathEscape(txnID), bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
		return nil, &queue.PermanentError{Err: fmt.Errorf("status %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out queue.TxnResponse
	return &out, json.NewDecoder(resp.Body).Decode(&out)
}

// world is hs1 (the sending server: rooms service and queue on one test
// database) and the receivers of the remote servers.
type world struct {
	t     testing.TB
	pool  *pgxpool.Pool
	rooms *rooms.Service
	store *storage.FedQueue
	tr    *transport
	cfg   queue.Config
	q     *queue.Queue
	recv  map[id.ServerName]*receiver
	keys  map[id.ServerName]signing.Key
	// registry holds the metrics of the queue start runs.
	registry *prometheus.Registry
}

func newWorld(t testing.TB, cfg queue.Config, remotes ...id.ServerName) *world {
	t.Helper()
	pool := pgtest.OpenPool(t, pgtest.NewDatabase(t))
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, pool: pool, store: storage.NewFedQueue(pool), recv: map[id.ServerName]*receiver{},
		tr: &transport{urls: map[id.ServerName]string{}}, keys: map[id.ServerName]signing.Key{}}
	cfg.ServerName = hs1
	if cfg.BackoffInitial == 0 {
		cfg.BackoffInitial = 20 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 100 * time.Millisecond
	}
	w.cfg = cfg
	for _, name := range remotes {
		r := newReceiver(t)
		w.recv[name] = r
		w.tr.urls[name] = r.srv.URL
		w.tr.client = r.srv.Client() // every test server shares the httptest CA
		if w.keys[name], err = signing.Generate("ed25519:" + string(name[:3])); err != nil {
			t.Fatal(err)
		}
	}
	// The rooms service tells the queue about commits through this
	// indirection, so that a test can replace the queue (a restart).
	roomStore := storage.NewRooms(pool)
	w.store.UpToFrontierOf(roomStore)
	w.rooms = rooms.New(rooms.Config{ServerName: hs1, Key: key}, roomStore, nil, outboundFunc(w.sendEvent),
		slog.Default())
	// The resident side of remote joins: the real inbound pipeline, with
	// the remote servers' keys.
	keys := func(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		k, ok := w.keys[server]
		if !ok || k.ID() != keyID {
			return nil, fmt.Errorf("no key %s of %s", keyID, server)
		}
		return k.Public(), nil
	}
	in := rooms.NewInbound(w.rooms, roomStore, rooms.InboundDeps{Keys: keys})
	w.rooms.SetFederation(rooms.FederationDeps{Keys: keys, Importer: in, Invites: in, Accept: in.AcceptPDU})
	return w
}

type outboundFunc func(room id.RoomID, ev *event.Event)

func (f outboundFunc) SendEvent(_ context.Context, room id.RoomID, ev *event.Event) { f(room, ev) }

func (w *world) sendEvent(room id.RoomID, ev *event.Event) {
	if w.q != nil {
		w.q.SendEvent(context.Background(), room, ev)
	}
}

// start runs a new queue on the world's database.
func (w *world) start() *queue.Queue {
	w.t.Helper()
	w.registry = prometheus.NewRegistry()
	q := queue.New(w.cfg, w.store, w.tr, queue.NewMetrics(w.registry), slog.Default())
	if err := q.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.q = q
	w.t.Cleanup(q.Close)
	return q
}

// stop closes the running queue (a server going down).
func (w *world) stop() {
	if w.q != nil {
		w.q.Close()
		w.q = nil
	}
}

// room creates a room of alice@hs1 that the given remote users join
// through the resident side of make_join/send_join, with joins signed by
// their servers' keys.
func (w *world) room(remote ...id.UserID) id.RoomID {
	w.t.Helper()
	ctx := context.Background()
	alice := id.NewUserID("alice", hs1)
	room, err := w.rooms.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, u := range remote {
		w.remoteJoin(room, u)
	}
	return room
}

// remoteJoin joins user (of a remote server) to room as their server
// would: make_join, fill and sign the template, send_join.
func (w *world) remoteJoin(room id.RoomID, user id.UserID) {
	w.t.Helper()
	ctx := context.Background()
	srv := user.Server()
	var versions []roomversion.ID
	for _, v := range roomversion.All() {
		versions = append(versions, v.ID)
	}
	tpl, err := w.rooms.MakeJoin(ctx, srv, room, user, versions)
	if err != nil {
		w.t.Fatal(err)
	}
	v, _ := roomversion.Lookup(tpl.Version)
	obj, err := canonicaljson.Parse(tpl.Event, v.StrictCanonicalJSON)
	if err != nil {
		w.t.Fatal(err)
	}
	obj = obj.Without("hashes", "signatures", "unsigned", "event_id").
		With("origin", canonicaljson.StringValue(string(srv))).
		With("origin_server_ts", canonicaljson.IntValue(time.Now().UnixMilli()))
	signed, err := event.HashAndSign(v, obj, srv, w.keys[srv])
	if err != nil {
		w.t.Fatal(err)
	}
	raw := canonicaljson.Encode(signed)
	ev, err := event.Parse(v, raw)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.rooms.SendJoin(ctx, srv, room, ev.EventID(), raw, false); err != nil {
		w.t.Fatal(err)
	}
}

// send sends messages of alice with the given bodies.
func (w *world) send(room id.RoomID, bodies ...string) {
	w.t.Helper()
	for _, b := range bodies {
		content, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": b})
		_, err := w.rooms.Send(context.Background(), rooms.Viewer{User: id.NewUserID("alice", hs1), Device: "D"}, room,
			"m.room.message", "t"+b, content)
		if err != nil {
			w.t.Fatal(err)
		}
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}
