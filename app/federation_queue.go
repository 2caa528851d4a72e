package app

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ephemeral"
	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
)

// newFederationQueue builds the durable outbound federation queue (issue
// #7): the rooms service hands it every committed event (it replaces
// rooms.NoOutbound), Start resumes whatever was queued before a restart.
// Its fan-out reads the stream up to roomStore's frontier.
func newFederationQueue(cfg *config.Config, pool *pgxpool.Pool, roomStore *storage.Rooms, transport queue.Transport,
	registry prometheus.Registerer, logger *slog.Logger) *queue.Queue {
	qc := cfg.Federation.Queue
	return queue.New(queue.Config{ServerName: cfg.ServerName, BackoffInitial: qc.BackoffInitial,
		BackoffMax: qc.BackoffMax, CatchUpThreshold: qc.CatchUpThreshold},
		storage.NewFedQueue(pool).UpToFrontierOf(roomStore), transport, queue.NewMetrics(registry), logger)
}

// wireFederationEDUs makes local users' typing, receipts, presence and
// E2EE EDUs go out through q, and returns the handler of inbound EDUs
// (the EDUHandler of PUT /send/{txnId}) that delivers remote users' ones
// to the same services. ks and acl may be nil.
func wireFederationEDUs(q *queue.Queue, typing *ephemeral.Typing, receipts *ephemeral.Receipts,
	pres *presence.Service, ks *keys.Service,
	acl func(ctx context.Context, room id.RoomID, origin id.ServerName) error, logger *slog.Logger) *federation.EDUs {
	typing.SetRemoteSender(q)
	receipts.SetRemoteSender(q)
	pres.SetRemoteSender(q)
	q.SetPresenceSource(pres)
	d := federation.EDUDeps{Typing: typing, Receipts: receipts, Presence: pres, ACL: acl, Logger: logger}
	if ks != nil {
		ks.SetEDUSender(q)
		d.Keys = ks
	}
	return federation.NewEDUs(d)
}

// fanOutNotifier is the rooms service's notifier: the sync engine's, and
// for membership changes the federation queue's fan-out too. Events
// received from other servers are committed without the outbound sender
// (nothing of theirs is sent on), but a remote join or leave changes which
// servers ours go to, and a server that joined gets our users' presence.
type fanOutNotifier struct {
	rooms.Notifier
	q *queue.Queue
}

func (n fanOutNotifier) OnNewEvent(ctx context.Context, ev rooms.NewEvent) {
	n.Notifier.OnNewEvent(ctx, ev)
	if ev.Type == "m.room.member" {
		n.q.SendEvent(ctx, ev.RoomID, nil)
	}
}
