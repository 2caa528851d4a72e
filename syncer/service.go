package syncer

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/parleyhq/parley/id"
)

// Config tunes the Service.
type Config struct {
	// PrevBatch renders the /messages token that paginates backwards from
	// just before the event at seq of room: a timeline's prev_batch. The
	// rooms service defines the token format; nil uses DefaultPrevBatch.
	PrevBatch func(room id.RoomID, seq int64) string
	// MaxTimeout caps a long-poll's timeout (default 2 minutes).
	MaxTimeout time.Duration
}

// DefaultPrevBatch is the prev_batch of a timeline when Config.PrevBatch
// is unset: "b" and the sequence number of the latest event before the
// timeline (a backward /messages token from there).
func DefaultPrevBatch(_ id.RoomID, seq int64) string {
	return "b" + strconv.FormatInt(seq, 10)
}

// Service is the sync engine: filters and /sync.
type Service struct {
	cfg      Config
	filters  FilterStore
	store    Store
	notifier *Notifier
	format   Formatter
	logger   *slog.Logger
}

// New returns the service. notifier is the one the rooms service tells
// about its commits.
func New(cfg Config, filters FilterStore, store Store, notifier *Notifier, format Formatter, logger *slog.Logger) *Service {
	if cfg.PrevBatch == nil {
		cfg.PrevBatch = DefaultPrevBatch
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 2 * time.Minute
	}
	return &Service{cfg: cfg, filters: filters, store: store, notifier: notifier, format: format, logger: logger}
}
