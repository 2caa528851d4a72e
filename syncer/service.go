package syncer

import (
	"log/slog"
	"time"
)

// Config tunes the Service.
type Config struct {
	// MaxTimeout caps a long-poll's timeout (default 2 minutes).
	MaxTimeout time.Duration
}

// Service is the sync engine: filters and /sync.
type Service struct {
	cfg      Config
	filters  FilterStore
	store    Store
	notifier *Notifier
	format   Formatter
	logger   *slog.Logger
	// sources are the non-timeline streams (SetSources).
	sources []StreamSource
	// ignore is the users' ignore lists (SetIgnoreList); nil ignores
	// nobody.
	ignore IgnoreList
	// tracker hears syncs start and end (presence); nil: nobody.
	tracker PresenceTracker
	// posReads shares reads of the streams' positions between syncs
	// that ask at the same time.
	posReads sharedRead
	// filterCache keeps the stored filters syncs name by id.
	filterCache filterCache
	// rendered keeps the viewer-independent JSON of recent events.
	rendered renderCache
	// joinedCache keeps each user's joined rooms at the position of
	// their last build, for the wait of an idle long-poll (idle.go).
	joinedCache joinedCache
	// beforeIdleWait, when set (tests), runs between an idle long-poll's
	// read of the positions and its wait.
	beforeIdleWait func()
}

// New returns the service. notifier is the one the rooms service tells
// about its commits.
func New(cfg Config, filters FilterStore, store Store, notifier *Notifier, format Formatter, logger *slog.Logger) *Service {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 2 * time.Minute
	}
	return &Service{cfg: cfg, filters: filters, store: store, notifier: notifier, format: format, logger: logger}
}
