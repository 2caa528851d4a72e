package ephemeral

import (
	"context"
	"slices"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// RemoteSender hands local users' typing and public receipts to the other
// servers of the room (the federation queue implements it; server-server
// API "Typing Notifications", "Receipts"). It must not block for long and
// reports its own failures: the local change stands either way.
type RemoteSender interface {
	SendTyping(ctx context.Context, room id.RoomID, user id.UserID, typing bool)
	SendReceipt(ctx context.Context, r syncer.Receipt)
}

// SetRemoteSender makes local changes reach the other servers; call it
// while wiring.
func (t *Typing) SetRemoteSender(r RemoteSender) { t.remote = r }

// SetRemoteSender makes local public receipts reach the other servers;
// call it while wiring.
func (r *Receipts) SetRemoteSender(s RemoteSender) { r.remote = s }

// RemoteTypingTimeout is how long a remote user's typing lasts unless
// their server renews or ends it: the m.typing EDU carries no timeout.
const RemoteTypingTimeout = MaxTypingTimeout

// SetRemoteTyping records a typing change of a remote user received from
// their server (m.typing): the user must be joined to the room. It is
// shown to local members like a local user's and not sent on.
func (t *Typing) SetRemoteTyping(ctx context.Context, user id.UserID, room id.RoomID, typing bool) error {
	return t.set(ctx, user, room, typing, RemoteTypingTimeout, false)
}

// PutRemote stores a read receipt of a remote user received from their
// server (m.receipt): the user must be joined to the room. The event need
// not be known here (it may not have arrived yet). Not sent on.
func (r *Receipts) PutRemote(ctx context.Context, rec syncer.Receipt) error {
	if rec.Type != ReceiptRead {
		return mxerr.InvalidParam.Msg("only m.read receipts cross servers")
	}
	joined, err := r.rooms.JoinedRooms(ctx, rec.User)
	if err != nil {
		return err
	}
	if !slices.Contains(joined, rec.Room) {
		return mxerr.Forbidden.Msg("the user is not joined to the room")
	}
	if rec.TS <= 0 {
		rec.TS = time.Now().UnixMilli()
	}
	pos, err := r.store.PutReceipt(ctx, rec)
	if err != nil {
		return err
	}
	r.notifier.Notify(syncer.Change{Stream: syncer.StreamReceipts, Pos: pos, Room: rec.Room})
	return nil
}
