// Package queue is the durable outbound federation sender (spec
// server-server-api "Transactions"): for every remote server in a room with
// us, one sender that batches our events (PDUs, at most 50) and EDUs (at
// most 100) into transactions, one in flight at a time, retried under the
// same transaction id with exponential backoff until the destination
// accepts them.
//
// Durability: a destination's PDUs are not copied anywhere when an event is
// committed. Each destination has a cursor, the last acknowledged global
// stream position, and its PDUs are read from the events table after it;
// SendEvent only wakes the senders. A fan-out pass over the stream keeps
// the rooms each server has joined members in (Store.FanOut). EDUs are
// written to a table before they are acknowledged to the local caller. A
// restart resumes every sender where its cursor stands.
//
// What is sent: our users' events, and membership events (a resident
// server relays the joins, leaves and knocks it accepted through send_join
// and the like); never outliers, soft-failed or rejected events, never an
// event to its sender's server, never anything to ourselves.
//
// Several nodes on one database: a destination is leased to the node that
// tries it (released when it has nothing left and on Close), so one
// transaction is in flight per destination across the nodes.
//
// Catch-up: a destination that was away and has more than
// CatchUpThreshold PDUs waiting gets only the newest event of each room;
// its server pulls what lies between with get_missing_events, as the spec
// intends.
//
// It implements rooms.OutboundSender and the remote senders of the
// ephemeral and presence packages; it imports no storage (app wires a
// Store in).
package queue

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// Limits of one transaction (spec: PUT /send/{txnId} carries at most 50
// PDUs and 100 EDUs).
const (
	MaxPDUs = 50
	MaxEDUs = 100
)

// EDU is one ephemeral data unit for a destination.
type EDU struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
	// CoalesceKey, when set, replaces an unsent EDU of the same
	// destination and key (a user's presence, a user's typing in a room).
	CoalesceKey string `json:"-"`
	// Expires, when set, drops the EDU unsent after that time.
	Expires time.Time `json:"-"`
}

// Txn is one transaction for a destination, as persisted before sending.
type Txn struct {
	ID   string
	PDUs []json.RawMessage
	EDUs []EDU
	// CatchUp: the PDUs are the newest events of their rooms only.
	CatchUp bool
	// Pending is how many PDUs were waiting when the transaction was built
	// (at most CatchUpThreshold+1): the queue depth metric.
	Pending int
}

// Destination is a destination's persisted retry state.
type Destination struct {
	Name     id.ServerName
	Failures int
	RetryAt  time.Time
}

// BuildParams tell Store.NextTxn how to build a transaction.
type BuildParams struct {
	// Origin is our server name: only our events (and membership events,
	// which a resident server relays after send_join/leave/knock) are sent.
	Origin id.ServerName
	// TxnID is the id of the transaction when one is built.
	TxnID string
	// CatchUpThreshold: more PDUs waiting than this builds a catch-up
	// transaction.
	CatchUpThreshold int
	// Now drops expired EDUs.
	Now time.Time
	// Node identifies this queue; NextTxn leases the destination to it
	// until LeaseUntil, and answers *BusyError while another node holds
	// the lease.
	Node       string
	LeaseUntil time.Time
}

// BusyError is NextTxn's answer when the destination must not be tried
// before Until: another node holds its lease, or its persisted backoff
// runs (set by another node).
type BusyError struct {
	Until time.Time
	// Leased: another node holds the lease (it may release it sooner).
	Leased bool
}

func (e *BusyError) Error() string {
	return "destination busy until " + e.Until.Format(time.RFC3339Nano)
}

// leaseFor is how long a destination stays with the node that last
// tried it: longer than one request may take, short enough that the
// destinations of a node that died are taken over soon.
const leaseFor = 5 * time.Minute

// Store is the queue's persistence (storage.FedQueue implements it).
type Store interface {
	// FanOut applies the membership changes of the next events of the
	// stream (at most limit) to the destinations' rooms.
	FanOut(ctx context.Context, origin id.ServerName, limit int) (FanOutResult, error)
	// LocalMembers are our server's users joined to room.
	LocalMembers(ctx context.Context, room id.RoomID, origin id.ServerName) ([]id.UserID, error)
	// Destinations lists the destinations with something waiting, with
	// their retry state.
	Destinations(ctx context.Context) ([]Destination, error)
	// NextTxn returns the transaction in flight for dest, or else builds
	// one of what waits, persists it as in flight and returns it; nil when
	// nothing waits.
	NextTxn(ctx context.Context, dest id.ServerName, p BuildParams) (*Txn, error)
	// AckTxn records that dest accepted the transaction: its cursor moves
	// on, its EDUs are deleted, its backoff is cleared.
	AckTxn(ctx context.Context, dest id.ServerName, txnID string) error
	// ReleaseLeases gives up every destination node leases.
	ReleaseLeases(ctx context.Context, node string) error
	// SetBackoff persists dest's retry state.
	SetBackoff(ctx context.Context, dest id.ServerName, failures int, retryAt time.Time) error
	// EnqueueEDU stores edu for each destination.
	EnqueueEDU(ctx context.Context, dests []id.ServerName, edu EDU) error
	// RoomServers are the servers with joined members in room.
	RoomServers(ctx context.Context, room id.RoomID) ([]id.ServerName, error)
	// UserServers are the servers sharing a joined room with user.
	UserServers(ctx context.Context, user id.UserID) ([]id.ServerName, error)
	// SharesRooms says whether any other server shares a room with us
	// (has a window open): when none does, only membership events can
	// change what the fan-out would do.
	SharesRooms(ctx context.Context) (bool, error)
}

// FanOutResult is what one fan-out step did.
type FanOutResult struct {
	// Wake are the destinations of the rooms with new events.
	Wake []id.ServerName
	// Joined are the servers that started sharing a room with us.
	Joined []RoomServer
	// More: the stream has further events.
	More bool
}

// RoomServer is a server in a room.
type RoomServer struct {
	Room   id.RoomID
	Server id.ServerName
}

// PresenceSource gives the current presence of local users, for a server
// that starts sharing a room with them (presence.Service implements it).
type PresenceSource interface {
	CurrentPresence(users []id.UserID) []syncer.PresenceEntry
}

// Transport sends one transaction (fedclient implements it: PUT
// /_matrix/federation/v1/send/{txnId}).
type Transport interface {
	SendTransaction(ctx context.Context, destination id.ServerName, txnID string, body *TxnBody) (*TxnResponse, error)
}

// TxnBody is the body of PUT /send/{txnId}.
type TxnBody struct {
	Origin         id.ServerName     `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []EDU             `json:"edus,omitempty"`
}

// TxnResponse is the answer: per PDU, {} or {"error": "..."}.
type TxnResponse struct {
	PDUs map[string]struct {
		Error string `json:"error,omitempty"`
	} `json:"pdus"`
}

// PermanentError is what a Transport returns when the destination refused
// the transaction for good (a 400 or 403): retrying the same transaction
// cannot succeed, so it is dropped instead of blocking the destination.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError is what a Transport returns when the destination asked
// us to wait (429 with Retry-After): the next attempt waits at least that
// long.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Config tunes the queue.
type Config struct {
	ServerName       id.ServerName
	BackoffInitial   time.Duration
	BackoffMax       time.Duration
	CatchUpThreshold int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Queue is the outbound sender of every destination.
type Queue struct {
	cfg       Config
	store     Store
	transport Transport
	metrics   *Metrics
	logger    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	fanout chan struct{}

	// presence, when set, gives the presence of our users to servers
	// that join their rooms.
	presence PresenceSource

	// shared: other servers may share rooms with us (Store.SharesRooms),
	// so every event goes through the fan-out; when false only membership
	// events do, and a server with only local rooms pays nothing per
	// message. memberSeen: a membership event came since the last pass,
	// which must then look at shared again.
	shared, memberSeen atomic.Bool

	mu      sync.Mutex
	dests   map[id.ServerName]*sender
	stopped bool
	txnSeq  uint64
	// txnPrefix makes this run's transaction ids unique (nextTxnID).
	txnPrefix string
}

// New returns the queue; Start runs it. metrics may be nil.
func New(cfg Config, store Store, transport Transport, metrics *Metrics, logger *slog.Logger) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = 2 * time.Second
	}
	if cfg.BackoffMax < cfg.BackoffInitial {
		cfg.BackoffMax = cfg.BackoffInitial
	}
	if cfg.CatchUpThreshold < MaxPDUs {
		cfg.CatchUpThreshold = 500
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	prefix := make([]byte, 9)
	_, _ = rand.Read(prefix)
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{txnPrefix: base64.RawURLEncoding.EncodeToString(prefix), cfg: cfg, store: store, transport: transport, metrics: metrics, logger: logger,
		ctx: ctx, cancel: cancel, fanout: make(chan struct{}, 1), dests: map[id.ServerName]*sender{}}
}

// Start resumes every destination with something waiting (whatever was
// queued before a restart is sent) and runs the fan-out over the stream;
// the others get a sender when something is queued for them.
func (q *Queue) Start(ctx context.Context) error {
	dests, err := q.store.Destinations(ctx)
	if err != nil {
		return err
	}
	shared, err := q.store.SharesRooms(ctx)
	if err != nil {
		return err
	}
	q.shared.Store(shared)
	q.mu.Lock()
	for _, d := range dests {
		s := q.senderLocked(d.Name)
		if s != nil {
			s.failures, s.retryAt = d.Failures, d.RetryAt
			s.wakeUp()
		}
	}
	q.mu.Unlock()
	q.wg.Add(1)
	go q.runFanOut()
	q.wakeFanOut()
	return nil
}

// Close stops every sender and waits for them: a transaction under way is
// cancelled and stays in flight, to be retried after the next start.
func (q *Queue) Close() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	// Another node (or this one restarted) may take the destinations over
	// at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.store.ReleaseLeases(ctx, q.txnPrefix); err != nil {
		q.logger.Warn("federation queue: release leases", slog.String("error", err.Error()))
	}
}

// isStopped reports whether Close has begun.
func (q *Queue) isStopped() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stopped
}

// Wake makes dest's sender look for work now.
func (q *Queue) Wake(dest id.ServerName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.senderLocked(dest); s != nil {
		s.wakeUp()
	}
}

// OnInboundRequest is called when dest sent us a request: it is up, so
// its backoff ends and whatever waits for it is sent now.
func (q *Queue) OnInboundRequest(dest id.ServerName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.dests[dest]
	if s == nil {
		// Unknown destinations have nothing queued: no sender for every
		// server that ever calls us.
		return
	}
	select {
	case s.reset <- struct{}{}:
	default:
	}
}

// senderLocked returns dest's sender, starting it; nil for ourselves or
// after Close. q.mu is held.
func (q *Queue) senderLocked(dest id.ServerName) *sender {
	if dest == q.cfg.ServerName || dest == "" || q.stopped {
		return nil
	}
	s := q.dests[dest]
	if s == nil {
		s = &sender{q: q, dest: dest, wake: make(chan struct{}, 1), reset: make(chan struct{}, 1)}
		q.dests[dest] = s
		q.wg.Add(1)
		go s.run()
	}
	return s
}

func (q *Queue) wakeFanOut() {
	select {
	case q.fanout <- struct{}{}:
	default:
	}
}

// fanOutBatch is how many events one fan-out step reads;
// fanOutCoalesce how long a wake-up waits for more commits.
const (
	fanOutBatch    = 1000
	fanOutCoalesce = 5 * time.Millisecond
)

// runFanOut applies the stream's membership changes to the destinations'
// rooms and wakes the senders of rooms with new events.
func (q *Queue) runFanOut() {
	defer q.wg.Done()
	backoff := q.cfg.BackoffInitial
	recheck := time.NewTicker(sharedRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-q.fanout:
		case <-recheck.C:
			// Another node may have opened the first window (a remote
			// join it accepted): events of ours committed meanwhile
			// wait for a pass, which recheckShared starts then.
			if !q.shared.Load() {
				q.recheckShared()
			}
			continue
		}
		// A burst of commits is read in one pass: one fan-out
		// transaction per few milliseconds at most, whatever the send
		// rate.
		select {
		case <-q.ctx.Done():
			return
		case <-time.After(fanOutCoalesce):
		}
		// Taken before the pass: a membership event committed during it
		// sets it again and wakes another pass.
		membersChanged := q.memberSeen.Swap(false)
		for {
			res, err := q.store.FanOut(q.ctx, q.cfg.ServerName, fanOutBatch)
			if err != nil {
				if q.ctx.Err() != nil {
					return
				}
				q.logger.Error("federation queue: fan-out", slog.String("error", err.Error()))
				// The database is away: try again later, the stream waits.
				select {
				case <-q.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, q.cfg.BackoffMax)
				continue
			}
			backoff = q.cfg.BackoffInitial
			q.sendPresenceTo(res.Joined)
			for _, d := range res.Wake {
				q.Wake(d)
			}
			if !res.More {
				break
			}
		}
		if membersChanged {
			q.recheckShared()
		}
	}
}

// sharedRecheck is how often a queue that believes no room is shared
// looks again (another node may have changed that).
const sharedRecheck = 5 * time.Second

// recheckShared reads whether rooms are shared after a pass that applied
// membership changes. Turning true, it runs another pass: events of ours
// committed while it was false did not wake the fan-out.
func (q *Queue) recheckShared() {
	shared, err := q.store.SharesRooms(q.ctx)
	if err != nil {
		if q.ctx.Err() == nil {
			q.logger.Error("federation queue: shared rooms", slog.String("error", err.Error()))
		}
		shared = true // unknown: keep every event going through the fan-out
	}
	if was := q.shared.Swap(shared); shared && !was {
		q.wakeFanOut()
	}
}

// nextTxnID is unique per transaction: a random prefix drawn when the
// queue starts and a counter (the spec asks for uniqueness per origin and
// destination; a restart keeps the transaction in flight under its stored
// id and draws a new prefix for the next ones, so a reused id can never
// make the receiver answer a new transaction from its record of an old one).
func (q *Queue) nextTxnID() string {
	q.mu.Lock()
	q.txnSeq++
	n := q.txnSeq
	q.mu.Unlock()
	return q.txnPrefix + "." + strconv.FormatUint(n, 36)
}
