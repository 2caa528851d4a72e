package users

import (
	"math"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// RateLimit is a token bucket: Burst requests at once, refilled at Rate
// per second.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Limiter applies one RateLimit per key (an IP address, a user id). It
// lives in memory: in a cluster each node limits on its own, which bounds
// the total at nodes × limit.
type Limiter struct {
	mu      sync.Mutex
	limit   RateLimit
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets triggers a sweep of full (idle) buckets.
const maxBuckets = 10000

// NewLimiter returns a limiter applying l to every key.
func NewLimiter(l RateLimit) *Limiter {
	return &Limiter{limit: l, buckets: map[string]*bucket{}, now: time.Now}
}

// Allow takes one token from key's bucket. When none is left it returns
// false and how long until one is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = &bucket{tokens: float64(l.limit.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(float64(l.limit.Burst), b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.limit.Rate <= 0 {
		return false, time.Hour
	}
	wait := time.Duration((1 - b.tokens) / l.limit.Rate * float64(time.Second))
	return false, wait
}

// sweepLocked forgets buckets that have refilled completely: they behave
// exactly like new ones.
func (l *Limiter) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.limit.Rate >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
}

// Limits are the rate limits of login and registration.
type Limits struct {
	LoginPerIP      RateLimit
	LoginPerAccount RateLimit
	RegisterPerIP   RateLimit
	// GetLoginTokenPerAccount is stricter, as the spec encourages for POST
	// /login/get_token (each token logs in a new client).
	GetLoginTokenPerAccount RateLimit
}

// DefaultLimits: a few attempts at once, then one every five seconds per IP
// and per account, which stops password guessing without hurting a user
// who mistypes.
var DefaultLimits = Limits{
	LoginPerIP:      RateLimit{Rate: 0.2, Burst: 10},
	LoginPerAccount: RateLimit{Rate: 0.2, Burst: 5},
	RegisterPerIP:   RateLimit{Rate: 0.2, Burst: 5},

	GetLoginTokenPerAccount: RateLimit{Rate: 1.0 / 60, Burst: 3},
}

type limiters struct {
	loginIP, loginUser, register, getLoginToken *Limiter
}

func newLimiters(cfg Config) *limiters {
	if !cfg.RateLimited {
		return nil
	}
	return &limiters{
		loginIP:   NewLimiter(cfg.Limits.LoginPerIP),
		loginUser: NewLimiter(cfg.Limits.LoginPerAccount),
		register:  NewLimiter(cfg.Limits.RegisterPerIP),

		getLoginToken: NewLimiter(cfg.Limits.GetLoginTokenPerAccount),
	}
}

// limited is M_LIMIT_EXCEEDED with retry_after_ms; the edge adds the
// Retry-After header (spec: "Rate limiting").
func limited(l *Limiter, key string) error {
	if key == "" {
		return nil
	}
	ok, wait := l.Allow(key)
	if ok {
		return nil
	}
	ms := wait.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return mxerr.LimitExceeded.With("retry_after_ms", ms)
}

// AllowLogin takes one login attempt from the client's IP bucket and, when
// the request names an account, from that account's bucket.
func (s *Service) AllowLogin(ip string, user id.UserID) error {
	if s.limits == nil {
		return nil
	}
	if err := limited(s.limits.loginIP, ip); err != nil {
		return err
	}
	return limited(s.limits.loginUser, string(user))
}

// AllowRegister takes one registration attempt from the client's IP bucket.
func (s *Service) AllowRegister(ip string) error {
	if s.limits == nil {
		return nil
	}
	return limited(s.limits.register, ip)
}

// AllowGetLoginToken takes one POST /login/get_token attempt from the
// account's bucket.
func (s *Service) AllowGetLoginToken(user id.UserID) error {
	if s.limits == nil {
		return nil
	}
	return limited(s.limits.getLoginToken, string(user))
}
