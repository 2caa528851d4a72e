package users

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// Config tunes the Service. Zero durations take the defaults below.
type Config struct {
	ServerName id.ServerName
	// RegistrationMode is "open", "token" or "closed" (config.Registration*).
	RegistrationMode string
	AllowGuests      bool
	// SharedSecret enables shared-secret registration when not "".
	SharedSecret string

	Password PasswordParams // zero: DefaultPasswordParams

	// AccessTokenLifetime is the lifetime of access tokens issued to clients
	// that asked for a refresh token (default 5 minutes).
	AccessTokenLifetime time.Duration
	// LoginTokenLifetime bounds m.login.token tokens (default 2 minutes, the
	// spec's recommendation).
	LoginTokenLifetime time.Duration
	// UIASessionLifetime bounds user-interactive auth sessions (default 15 minutes).
	UIASessionLifetime time.Duration
	// NonceLifetime bounds shared-secret registration nonces (default 60 s).
	NonceLifetime time.Duration
	// LastSeenFlush is how often device activity is written (default 30 s).
	LastSeenFlush time.Duration
	// TokenCacheSize and TokenCacheTTL bound the access token cache
	// (defaults 10 000 entries, 1 minute).
	TokenCacheSize int
	TokenCacheTTL  time.Duration

	// PasswordDisabled refuses password login, password changes and
	// passwords at registration, and leaves the password stage out of
	// user-interactive auth (auth.password.enabled: false).
	PasswordDisabled bool
	// SSO offers the m.login.sso stage in user-interactive auth: an
	// identity provider is configured (issue #10).
	SSO bool

	// RateLimited switches the login and registration limits on
	// (rate_limits.enabled); Limits overrides their defaults.
	RateLimited bool
	Limits      Limits
}

func (c *Config) defaults() {
	if c.Password == (PasswordParams{}) {
		c.Password = DefaultPasswordParams
	}
	setDefault(&c.AccessTokenLifetime, 5*time.Minute)
	setDefault(&c.LoginTokenLifetime, 2*time.Minute)
	setDefault(&c.UIASessionLifetime, 15*time.Minute)
	setDefault(&c.NonceLifetime, time.Minute)
	setDefault(&c.LastSeenFlush, 30*time.Second)
	setDefault(&c.TokenCacheTTL, time.Minute)
	if c.Limits == (Limits{}) {
		c.Limits = DefaultLimits
	}
	if c.TokenCacheSize <= 0 {
		c.TokenCacheSize = 10000
	}
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Service is the accounts domain. It is safe for concurrent use. New starts
// one background goroutine (the last-seen flusher); Close stops it.
type Service struct {
	cfg    Config
	st     Stores
	log    *slog.Logger
	now    func() time.Time
	cache  *tokenCache
	seen   *lastSeen
	limits *limiters   // nil when rate limiting is off
	jwt    JWTVerifier // nil when JWT login is off
	jwtReg bool        // JWT login creates unknown accounts
	dummy  string      // hash verified for unknown users, so both paths cost the same
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// New returns the Service and starts its last-seen flusher.
func New(cfg Config, st Stores, log *slog.Logger) (*Service, error) {
	cfg.defaults()
	dummy, err := HashPassword("not a password: equalises timing", cfg.Password)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:    cfg,
		st:     st,
		log:    log,
		now:    time.Now,
		cache:  newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheTTL),
		seen:   newLastSeen(),
		dummy:  dummy,
		limits: newLimiters(cfg),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.flushLoop()
	return s, nil
}

// Close stops the flusher and writes the pending device activity.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		<-s.done
		err = s.flushLastSeen(ctx)
	})
	return err
}

// Config returns the effective configuration (defaults applied).
func (s *Service) Config() Config { return s.cfg }

func (s *Service) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.LastSeenFlush)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.flushLastSeen(ctx); err != nil {
				s.log.Warn("flush device last seen", slog.String("error", err.Error()))
			}
			cancel()
		}
	}
}

func (s *Service) flushLastSeen(ctx context.Context) error {
	batch := s.seen.drain()
	if len(batch) == 0 {
		return nil
	}
	if err := s.st.Devices.UpdateLastSeen(ctx, batch); err != nil {
		return err
	}
	return nil
}

// FlushLastSeen writes the pending device activity now; tests and admin
// tooling use it, the server relies on the periodic flush and Close.
func (s *Service) FlushLastSeen(ctx context.Context) error { return s.flushLastSeen(ctx) }
