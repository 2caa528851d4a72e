package syncer

import (
	"log/slog"
)

// Service is the sync engine: filters and /sync.
type Service struct {
	filters FilterStore
	logger  *slog.Logger
}

// New returns the service.
func New(filters FilterStore, logger *slog.Logger) *Service {
	return &Service{filters: filters, logger: logger}
}
