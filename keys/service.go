package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// Notifier wakes the syncs a change concerns.
type Notifier interface {
	Notify(c syncer.Change)
}

// EDUSender queues an EDU for a remote server, durably; the federation
// queue implements it. Nil: nothing leaves this server.
type EDUSender interface {
	SendEDU(ctx context.Context, destination id.ServerName, eduType string, content json.RawMessage) error
}

// RemoteKeys asks remote servers for their users' keys (federation
// /user/keys/query and /user/keys/claim); bodies are the federation
// request and response bodies. Nil: remote users are reported as failures.
type RemoteKeys interface {
	QueryKeys(ctx context.Context, server id.ServerName, body json.RawMessage) (json.RawMessage, error)
	ClaimKeys(ctx context.Context, server id.ServerName, body json.RawMessage) (json.RawMessage, error)
}

// UIA runs user-interactive auth for cross-signing key uploads (the users
// service implements it): finish is called once the upload succeeded; an
// error (the users service's *UIARequired while auth is incomplete) stops
// the upload.
type UIA interface {
	AuthorizeCrossSigning(ctx context.Context, user id.UserID, device id.DeviceID, auth json.RawMessage) (finish func(context.Context) error, err error)
}

// Config tunes the Service.
type Config struct {
	ServerName id.ServerName
	// ToDeviceRetention is how long an undelivered to-device message is
	// kept (e2ee.to_device_retention); 0: DefaultToDeviceRetention.
	ToDeviceRetention time.Duration
}

// DefaultToDeviceRetention is the default of Config.ToDeviceRetention.
const DefaultToDeviceRetention = 30 * 24 * time.Hour

// Service is the E2EE domain.
type Service struct {
	cfg      Config
	store    Store
	notifier Notifier
	uia      UIA
	logger   *slog.Logger
	wireMu   sync.RWMutex // guards edus and remote
	edus     EDUSender
	remote   RemoteKeys
	// mergeMu guards the responses that concurrent remote queries merge
	// into (one lock for all: merging is quick, the wait is the network).
	mergeMu sync.Mutex

	// The background workers (Start, Close): the device list outbox
	// relay, the resync of remote device lists, the to-device clean-up.
	outboxKick chan struct{}
	outboxHeld atomic.Bool
	resyncKick chan struct{}
	gaps       atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// New returns the service; Start runs its background workers.
func New(cfg Config, store Store, notifier Notifier, uia UIA, logger *slog.Logger) *Service {
	if cfg.ToDeviceRetention <= 0 {
		cfg.ToDeviceRetention = DefaultToDeviceRetention
	}
	return &Service{cfg: cfg, store: store, notifier: notifier, uia: uia, logger: logger,
		outboxKick: make(chan struct{}, 1), resyncKick: make(chan struct{}, 1)}
}

// Start runs the background workers until Close: the relay of the device
// list outbox (what a previous run left is relayed now), the resync of
// remote device lists marked stale, and the expiry of old to-device
// messages. Call it once the EDU sender and remote keys are wired.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, run := range []func(context.Context){s.runOutbox, s.runResyncs, s.runToDeviceExpiry} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			run(ctx)
		}()
	}
}

// Close stops the background workers and waits for them.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
}

// SetEDUSender plugs the outbound federation queue in; call it while
// wiring.
func (s *Service) SetEDUSender(e EDUSender) {
	s.wireMu.Lock()
	defer s.wireMu.Unlock()
	s.edus = e
}

// SetRemoteKeys plugs the federation client in; call it while wiring.
func (s *Service) SetRemoteKeys(r RemoteKeys) {
	s.wireMu.Lock()
	defer s.wireMu.Unlock()
	s.remote = r
}

// eduSender and remoteKeys read what the Set methods plugged in: tests
// replace them while the background workers run.
func (s *Service) eduSender() EDUSender {
	s.wireMu.RLock()
	defer s.wireMu.RUnlock()
	return s.edus
}

func (s *Service) remoteKeys() RemoteKeys {
	s.wireMu.RLock()
	defer s.wireMu.RUnlock()
	return s.remote
}

// ErrWrongBackupVersion is M_WRONG_ROOM_KEYS_VERSION (spec: "Server-side
// key backups"): keys sent to a backup version that is not the current
// one.
var ErrWrongBackupVersion = &mxerr.Error{Code: "M_WRONG_ROOM_KEYS_VERSION", Status: http.StatusForbidden,
	Message: "Wrong backup version"}

func (s *Service) isLocal(u id.UserID) bool { return u.Server() == s.cfg.ServerName }
