package rooms

import (
	"context"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/signing"
)

// Notifier hears about every committed event, after COMMIT and in stream
// order per room. The sync engine implements it to wake waiting clients.
type Notifier interface {
	OnNewEvent(ctx context.Context, ev NewEvent)
}

// NewEvent describes a committed event for the Notifier.
type NewEvent struct {
	RoomID    id.RoomID
	EventID   id.EventID
	Seq       int64
	StreamPos int64
	Type      string
	// StateKey is nil for message events; for m.room.member it is the
	// user whose membership changed, and Membership the new membership.
	StateKey   *string
	Membership string
	Sender     id.UserID
}

// OutboundSender hands committed events to federation. Until federation
// exists, app passes NoOutbound.
type OutboundSender interface {
	SendEvent(ctx context.Context, room id.RoomID, ev *event.Event)
}

// NoNotifier and NoOutbound do nothing.
type (
	NoNotifier struct{}
	NoOutbound struct{}
)

func (NoNotifier) OnNewEvent(context.Context, NewEvent)               {}
func (NoOutbound) SendEvent(context.Context, id.RoomID, *event.Event) {}

// Config is the service's configuration.
type Config struct {
	ServerName id.ServerName
	Key        signing.Key
	// Now is the clock (tests fix it); nil means time.Now.
	Now func() time.Time
}

// Service is the room domain.
type Service struct {
	cfg      Config
	store    Store
	notifier Notifier
	outbound OutboundSender
	logger   *slog.Logger
	// streamToken reads the timeline position of a sync token (next_batch
	// is a valid /messages token too); nil until SetStreamTokenParser.
	streamToken func(token string) (pos int64, ok bool)
	// profiles fills the displayname and avatar_url of local users'
	// membership events; nil until SetProfiles.
	profiles ProfileSource
	// fed is federated membership (federated.go); zero until SetFederation.
	fed fedMembership
	// remoteDir reads other servers' room directories (serve_query.go);
	// nil until SetRemoteDirectory.
	remoteDir RemoteDirectory
	// backfill fetches history of rooms joined over federation
	// (backfill.go); nil until SetBackfill.
	backfill *backfillState
}

// New returns the service. notifier and outbound may be nil.
func New(cfg Config, store Store, notifier Notifier, outbound OutboundSender, logger *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if notifier == nil {
		notifier = NoNotifier{}
	}
	if outbound == nil {
		outbound = NoOutbound{}
	}
	return &Service{cfg: cfg, store: store, notifier: notifier, outbound: outbound, logger: logger}
}

// SetStreamTokenParser lets /messages and /members accept the sync
// engine's tokens: parse returns the token's global stream position of
// the timeline. App calls it once, before serving.
func (s *Service) SetStreamTokenParser(parse func(token string) (pos int64, ok bool)) {
	s.streamToken = parse
}

// ServerName is the server the service builds events for.
func (s *Service) ServerName() id.ServerName { return s.cfg.ServerName }

func (s *Service) nowMS() int64 { return s.cfg.Now().UnixMilli() }
