package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"

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
}

// Service is the E2EE domain.
type Service struct {
	cfg      Config
	store    Store
	notifier Notifier
	uia      UIA
	logger   *slog.Logger
	edus     EDUSender
	remote   RemoteKeys
	// mergeMu guards the responses that concurrent remote queries merge
	// into (one lock for all: merging is quick, the wait is the network).
	mergeMu sync.Mutex
}

// New returns the service.
func New(cfg Config, store Store, notifier Notifier, uia UIA, logger *slog.Logger) *Service {
	return &Service{cfg: cfg, store: store, notifier: notifier, uia: uia, logger: logger}
}

// SetEDUSender plugs the outbound federation queue in; call it while
// wiring.
func (s *Service) SetEDUSender(e EDUSender) { s.edus = e }

// SetRemoteKeys plugs the federation client in; call it while wiring.
func (s *Service) SetRemoteKeys(r RemoteKeys) { s.remote = r }

// ErrWrongBackupVersion is M_WRONG_ROOM_KEYS_VERSION (spec: "Server-side
// key backups"): keys sent to a backup version that is not the current
// one.
var ErrWrongBackupVersion = &mxerr.Error{Code: "M_WRONG_ROOM_KEYS_VERSION", Status: http.StatusForbidden,
	Message: "Wrong backup version"}

func (s *Service) isLocal(u id.UserID) bool { return u.Server() == s.cfg.ServerName }
