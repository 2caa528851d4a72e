// Package app wires Parley together: configuration, the database (managed
// or external), migrations, keys, the domain services and the HTTP
// listeners. cmd/parley runs it; end-to-end tests (apptest) reuse it, so a
// test server is the real server.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/accountdata"
	"github.com/parleyhq/parley/clientapi"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ephemeral"
	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/httpmetrics"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
	"github.com/parleyhq/parley/users"
)

// App is one running Parley node.
type App struct {
	cfg    *config.Config
	logger *slog.Logger

	db         *Database
	users      *users.Service
	media      *media.Service
	stopMedia  context.CancelFunc
	notifier   *syncer.Notifier
	presence   *presence.Service
	keys       *keys.Service
	signingKey signing.Key
	fedClient  *fedclient.Client
	keyring    *keyring.Keyring
	fedQueue   *queue.Queue
	ready      atomic.Bool

	servers   []*http.Server
	listeners []net.Listener
	addrs     map[string]string
	client    *clientapi.API
}

// New starts everything that must exist before requests are served — the
// database (and its migrations), the keys, the listeners — and builds the
// handlers. Nothing is served until Run. On error, whatever was started is
// stopped again.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, logger: logger, addrs: map[string]string{}}
	if err := a.build(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// build is New's work; on error, New closes whatever it started.
func (a *App) build(ctx context.Context) (err error) {
	cfg, logger := a.cfg, a.logger

	if a.signingKey, err = loadOrCreateSigningKey(cfg.DataDir); err != nil {
		return err
	}
	if a.db, err = OpenMigratedDatabase(ctx, cfg, logger); err != nil {
		return err
	}
	a.ready.Store(true)

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		storage.NewPoolCollector(a.db.Pool),
	)
	// Federation: the outbound client and the keyring (app/federation.go).
	if err := a.openFederation(registry); err != nil {
		return err
	}
	// Deleted devices take their E2EE keys along: the keys service hears
	// of every deletion (app/keys.go).
	userStores, deletions := withDeviceDeletions(storage.NewAccounts(a.db.Pool).UsersStores())
	usersConfig := users.Config{
		ServerName:       cfg.ServerName,
		RegistrationMode: cfg.Registration.Mode,
		AllowGuests:      cfg.Registration.AllowGuests,
		SharedSecret:     cfg.Registration.SharedSecret,
		RateLimited:      cfg.RateLimits.Enabled,
	}
	usersAuthConfig(cfg, &usersConfig) // auth.password, auth.oidc (app/sso.go)
	a.users, err = users.New(usersConfig, userStores, logger)
	if err != nil {
		return err
	}
	// JWT login and single sign-on (issue #10).
	ssoService, err := a.openSSO()
	if err != nil {
		return err
	}
	// The rooms store is shared: the sync engine reads the same events,
	// memberships and cached heads.
	roomStore := storage.NewRooms(a.db.Pool)
	// The sync engine's notifier hears every commit of the rooms service.
	a.notifier = syncer.NewNotifier(nil)
	// The durable outbound federation queue hears every commit too
	// (app/federation_queue.go).
	a.fedQueue = newFederationQueue(cfg, a.db.Pool, roomStore, a.fedClient, registry, logger)
	roomService := rooms.New(rooms.Config{ServerName: cfg.ServerName, Key: a.signingKey},
		roomStore, fanOutNotifier{Notifier: a.notifier, q: a.fedQueue}, a.fedQueue, logger)
	// /messages and /members also take /sync's next_batch tokens.
	roomService.SetStreamTokenParser(func(tok string) (int64, bool) {
		t, err := syncer.ParseToken(tok)
		return t.Pos(syncer.StreamTimeline), err == nil
	})
	// Profiles: local users' membership events carry them, and a change
	// re-sends the member events through the rooms service.
	profileStore := storage.NewProfiles(a.db.Pool)
	profileService := profiles.New(profiles.Config{SearchAllUsers: cfg.UserDirectory.SearchAllUsers},
		profileStore, profileStore, logger)
	roomService.SetProfiles(profileService)
	profileService.SetMemberUpdater(roomService)
	if a.media, err = a.openMedia(ctx); err != nil {
		return err
	}
	// Typing, receipts and account data: the sync engine's other streams.
	typing := ephemeral.NewTyping(a.notifier, roomService)
	syncService := syncer.New(syncer.Config{}, storage.NewFilters(a.db.Pool), storage.NewSync(roomStore),
		a.notifier, roomService, logger)
	accountDataStore := storage.NewAccountData(a.db.Pool)
	accountData := accountdata.New(accountDataStore, a.notifier)
	receiptStore := storage.NewReceipts(a.db.Pool)
	receipts := ephemeral.NewReceipts(receiptStore, roomService, accountData, a.notifier)
	sources := []syncer.StreamSource{syncer.TypingSource{View: typing},
		syncer.AccountDataSource{Store: accountDataStore}, syncer.ReceiptSource{Store: receiptStore}}
	// End-to-end encryption: to-device messages and device lists are sync
	// streams too.
	var keySources []syncer.StreamSource
	a.keys, keySources = newKeys(cfg, a.db.Pool, a.notifier, a.users, deletions, logger)
	sources = append(sources, keySources...)
	// Presence off: GET answers offline for everyone, PUT is accepted and
	// ignored, /sync carries no presence.
	presenceService := presence.New(presence.Config{Enabled: cfg.Presence.Enabled,
		IdleTimeout: cfg.Presence.IdleTimeout, OfflineTimeout: cfg.Presence.OfflineTimeout},
		a.notifier, roomService, logger)
	if cfg.Presence.Enabled {
		sources = append(sources, syncer.PresenceSource{View: presenceService, Sharing: storage.NewSync(roomStore), Rooms: roomService})
		syncService.SetPresenceTracker(presenceService)
	}
	a.presence = presenceService
	syncService.SetSources(sources...)
	syncService.SetIgnoreList(accountData)
	client := clientapi.New(clientapi.Deps{
		// Profiles and the user directory.
		Profiles: profileService,

		Config:  cfg,
		Logger:  logger,
		Metrics: httpmetrics.New(registry, "client"),
		Ready:   a.readiness,
		Users:   a.users,
		Media:   a.media,
		Rooms:   roomService,
		Sync:    syncService,
		Typing:  typing,

		AccountData: accountData,
		Receipts:    receipts,
		Presence:    presenceService,
		Keys:        a.keys,
		SSO:         ssoService,
	})
	a.client = client
	registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_client_longpolls_parked",
		Help: "Long-poll /sync requests waiting with their connection taken over (no goroutine each).",
	}, func() float64 { return float64(client.LongPollStats().Parked) }))
	if cfg.Presence.Enabled {
		// Every WebSocket frame is activity, as every request is.
		client.OnWebSocketActivity(func(_ context.Context, user id.UserID, _ id.DeviceID) {
			presenceService.Touch(user)
		})
	}
	if err := a.listen("client", cfg.Listen.Client, client, nil); err != nil {
		return err
	}
	// The Server-Server API; each endpoint group adds its service here.
	fedDeps := federation.Deps{Config: cfg, Logger: logger, Keyring: a.keyring, Client: a.fedClient, Heads: roomStore,
		Registry: registry}
	// Outbound: a server that calls us is up; EDUs both ways.
	fedDeps.OnInboundRequest = a.fedQueue.OnInboundRequest
	// Reads: what other servers ask of us, and our services' reads of
	// theirs (app/federation_reads.go).
	fedDeps.Serve = serveDeps(roomService, profileService, a.media, a.keys)
	wireRemoteReads(a.fedClient, cfg.ServerName, roomService, profileService, a.media, a.keys)
	var fedAPI *federation.API
	eduHandler := wireFederationEDUs(a.fedQueue, typing, receipts, presenceService, a.keys,
		func(ctx context.Context, room id.RoomID, origin id.ServerName) error {
			return fedAPI.CheckServerACL(ctx, room, origin)
		}, logger)
	// Inbound PDUs and transactions; the pipeline also imports rooms
	// joined over federation and keeps remote invites (app/federation_inbound.go).
	inbound, txns := newInbound(roomService, roomStore, a.db.Pool, a.keyring, a.fedClient, eduHandler, logger)
	fedDeps.Transactions = txns
	fedDeps.Membership = wireFederatedMembership(roomService, a.fedClient, a.keyring, inbound, storage.NewAccounts(a.db.Pool))
	if cfg.Listen.Federation != "" {
		cert, err := loadOrCreateCertificate(cfg.TLS.Cert, cfg.TLS.Key, cfg.DataDir, cfg.ServerName)
		if err != nil {
			return err
		}
		tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		fedAPI = federation.New(fedDeps)
		if err := a.listen("federation", cfg.Listen.Federation, fedAPI, tlsConfig); err != nil {
			return err
		}
	}
	if cfg.Listen.Metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
			if err := a.readiness(r); err != nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("OK\n"))
		})
		if err := a.listen("metrics", cfg.Listen.Metrics, mux, nil); err != nil {
			return err
		}
	}
	return nil
}

// readiness backs GET /health: migrations done and the database answering.
func (a *App) readiness(r *http.Request) error {
	if !a.ready.Load() {
		return errors.New("migrations are not done")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	return a.db.Pool.Ping(ctx)
}

// listen binds addr now, so that a port of 0 is resolved before Run and a
// taken port fails start-up rather than the first request.
func (a *App) listen(name, addr string, handler http.Handler, tlsConfig *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen.%s: %w", name, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	} else if r, ok := handler.(connReturner); ok {
		// Parked long-polls come back through it (app/reaccept.go).
		rl := newReacceptListener(ln).withLogger(a.logger)
		r.ReturnConnectionsTo(rl.Return)
		ln = rl
	}
	a.listeners = append(a.listeners, ln)
	a.addrs[name] = ln.Addr().String()
	a.servers = append(a.servers, &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	})
	return nil
}

// Addr is the bound address of a listener: "client", "federation" or
// "metrics"; "" when that listener is off.
func (a *App) Addr(name string) string { return a.addrs[name] }

// SigningKey is the server's ed25519 signing key.
func (a *App) SigningKey() signing.Key { return a.signingKey }

// Client is the Client-Server API (tests read its WebSocketStats).
func (a *App) Client() *clientapi.API { return a.client }

// Run serves until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish within client.shutdown_timeout,
// and returns. Close releases the rest.
func (a *App) Run(ctx context.Context) error {
	errs := make(chan error, len(a.servers))
	// Whatever was queued for other servers before a restart goes out
	// (a failure to list the destinations leaves them to the next event
	// or EDU for them, it does not stop the server).
	if err := a.fedQueue.Start(context.WithoutCancel(ctx)); err != nil {
		a.logger.ErrorContext(ctx, "federation queue: resume destinations", slog.String("error", err.Error()))
	}
	// The E2EE workers: the device list outbox relay (what a previous run
	// left goes out now), remote device list resyncs, to-device expiry.
	a.keys.Start()
	// A signing key rotated meanwhile is picked up (app/keyrotation.go).
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go a.watchSigningKey(watchCtx)
	for i, srv := range a.servers {
		go func() { errs <- srv.Serve(a.listeners[i]) }()
	}
	a.logger.InfoContext(ctx, "serving",
		slog.String("server_name", string(a.cfg.ServerName)),
		slog.String("client", a.Addr("client")),
		slog.String("federation", a.Addr("federation")),
		slog.String("metrics", a.Addr("metrics")))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	if a.client != nil {
		// WebSockets end with 1001 "going away": Shutdown does not see
		// hijacked connections.
		wsCtx, wsCancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Client.ShutdownTimeout)
		a.client.CloseWebSockets(wsCtx)
		wsCancel()
	}
	if a.client != nil {
		// Parked long-polls: none from now on, and the connections of
		// those that answer close (the server does not see them).
		a.client.StopParking()
	}
	if a.notifier != nil {
		// Waiting long-polls answer now instead of holding the shutdown.
		a.notifier.Close()
	}
	if a.client != nil {
		lpCtx, lpCancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Client.ShutdownTimeout)
		a.client.WaitParked(lpCtx)
		lpCancel()
	}
	if a.presence != nil {
		// Presence timers stop before the database closes.
		a.presence.Close()
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Client.ShutdownTimeout)
	defer cancel()
	for _, srv := range a.servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			a.logger.WarnContext(ctx, "shutdown did not finish in time", slog.String("error", err.Error()))
			_ = srv.Close()
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// Close releases what New acquired, in reverse order: listeners not yet
// served, then the database.
func (a *App) Close() {
	for _, ln := range a.listeners {
		_ = ln.Close()
	}
	if a.media != nil {
		a.stopMedia()
		a.media.Close()
	}
	if a.keys != nil {
		// Its workers write to the queue's tables and wake its senders.
		a.keys.Close()
	}
	if a.fedQueue != nil {
		// A transaction under way is cancelled; it stays in flight and
		// is retried after the next start.
		a.fedQueue.Close()
	}
	if a.fedClient != nil {
		a.fedClient.Close()
	}
	if a.users != nil {
		// Writes the devices' coalesced last-seen activity.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.users.Close(ctx); err != nil {
			a.logger.Warn("close users service", slog.String("error", err.Error()))
		}
		cancel()
	}
	if a.db != nil {
		a.db.Close()
	}
}
