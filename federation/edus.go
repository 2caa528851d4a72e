package federation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// EDU handling (spec server-server-api "EDUs", "Typing Notifications",
// "Presence", "Receipts", "Send-to-device messaging", "Device
// Management"). An EDU is advisory: a malformed one, or one about users of
// another server than its origin, is dropped and logged at debug level; it
// never fails the transaction that carried it.

// RemoteTyping records remote users' typing (ephemeral.Typing).
type RemoteTyping interface {
	SetRemoteTyping(ctx context.Context, user id.UserID, room id.RoomID, typing bool) error
}

// RemoteReceipts stores remote users' read receipts (ephemeral.Receipts).
type RemoteReceipts interface {
	PutRemote(ctx context.Context, r syncer.Receipt) error
}

// RemotePresence records remote users' presence (presence.Service).
type RemotePresence interface {
	SetRemotePresence(ctx context.Context, e syncer.PresenceEntry) error
}

// RemoteDeviceEDUs takes the E2EE EDUs (keys.Service).
type RemoteDeviceEDUs interface {
	HandleDirectToDevice(ctx context.Context, origin id.ServerName, content json.RawMessage) error
	HandleDeviceListUpdate(ctx context.Context, origin id.ServerName, content json.RawMessage) error
	HandleSigningKeyUpdate(ctx context.Context, origin id.ServerName, content json.RawMessage) error
}

// EDUDeps are the services EDUs are delivered to. Keys may be nil (the
// E2EE EDUs are then dropped); ACL may be nil (no server ACL check).
type EDUDeps struct {
	Typing   RemoteTyping
	Receipts RemoteReceipts
	Presence RemotePresence
	Keys     RemoteDeviceEDUs
	// ACL reports whether origin may take part in room: an error when
	// m.room.server_acl denies it (API.CheckServerACL).
	ACL    func(ctx context.Context, room id.RoomID, origin id.ServerName) error
	Logger *slog.Logger
}

// EDUs dispatches the EDUs of inbound transactions; it implements the
// EDUHandler that PUT /send/{txnId} calls.
type EDUs struct{ d EDUDeps }

// NewEDUs returns the dispatcher.
func NewEDUs(d EDUDeps) *EDUs {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &EDUs{d: d}
}

// HandleEDU delivers one EDU from origin.
func (e *EDUs) HandleEDU(ctx context.Context, origin id.ServerName, eduType string, content json.RawMessage) {
	var err error
	switch eduType {
	case "m.typing":
		err = e.typing(ctx, origin, content)
	case "m.receipt":
		err = e.receipts(ctx, origin, content)
	case "m.presence":
		err = e.presence(ctx, origin, content)
	case "m.direct_to_device", "m.device_list_update", "m.signing_key_update":
		err = e.device(ctx, origin, eduType, content)
	default:
		// Unknown EDU types are ignored (spec: EDUs are extensible).
		e.d.Logger.DebugContext(ctx, "federation: unknown EDU type ignored", slog.String("origin", string(origin)),
			slog.String("edu_type", eduType))
		return
	}
	if err != nil {
		e.logDropped(ctx, origin, eduType, err)
	}
}

// logDropped logs a dropped EDU: the remote's fault at debug level, ours
// (a database error) as a warning.
func (e *EDUs) logDropped(ctx context.Context, origin id.ServerName, eduType string, err error) {
	level := slog.LevelWarn
	var mx *mxerr.Error
	if errors.As(err, &mx) {
		level = slog.LevelDebug
	}
	e.d.Logger.Log(ctx, level, "federation: EDU dropped", slog.String("origin", string(origin)),
		slog.String("edu_type", eduType), slog.String("error", err.Error()))
}

// errNotOrigins: an EDU about a user of another server than the one that
// sent it (spec: servers send EDUs for their own users only).
var errNotOrigins = mxerr.Forbidden.Msg("the user does not belong to the origin server")

// typing handles m.typing: {room_id, user_id, typing}. The user must be of
// origin and joined to the room, and the ACL must admit origin.
func (e *EDUs) typing(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var c struct {
		RoomID string `json:"room_id"`
		UserID string `json:"user_id"`
		Typing bool   `json:"typing"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON.Msg("m.typing: " + err.Error())
	}
	room, err := id.ParseRoomID(c.RoomID)
	if err != nil {
		return mxerr.InvalidParam.Msg("m.typing: bad room_id")
	}
	user, err := id.ParseUserID(c.UserID)
	if err != nil {
		return mxerr.InvalidParam.Msg("m.typing: bad user_id")
	}
	if user.Server() != origin {
		return errNotOrigins
	}
	if err := e.acl(ctx, room, origin); err != nil {
		return err
	}
	if e.d.Typing == nil {
		return nil
	}
	return e.d.Typing.SetRemoteTyping(ctx, user, room, c.Typing)
}

// receiptEDU is m.receipt's content: room → receipt type → user → receipt.
type receiptEDU map[string]map[string]map[string]struct {
	EventIDs []string `json:"event_ids"`
	Data     struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id"`
	} `json:"data"`
}

// receipts handles m.receipt: every m.read receipt of a user of origin,
// in rooms whose ACL admits origin; others are skipped one by one.
func (e *EDUs) receipts(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var c receiptEDU
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON.Msg("m.receipt: " + err.Error())
	}
	for rawRoom, types := range c {
		room, err := id.ParseRoomID(rawRoom)
		if err != nil {
			e.logDropped(ctx, origin, "m.receipt", mxerr.InvalidParam.Msg("bad room id"))
			continue
		}
		// Spec "Server Access Control Lists": all receipts of a room
		// whose ACL denies origin are ignored.
		if err := e.acl(ctx, room, origin); err != nil {
			e.logDropped(ctx, origin, "m.receipt", err)
			continue
		}
		for rawUser, r := range types["m.read"] {
			user, err := id.ParseUserID(rawUser)
			switch {
			case err != nil:
				err = mxerr.InvalidParam.Msg("bad user id")
			case user.Server() != origin:
				err = errNotOrigins
			case len(r.EventIDs) == 0:
				err = mxerr.InvalidParam.Msg("no event_ids")
			}
			if err == nil && e.d.Receipts != nil {
				var ev id.EventID
				if ev, err = id.ParseEventID(r.EventIDs[len(r.EventIDs)-1]); err == nil {
					err = e.d.Receipts.PutRemote(ctx, syncer.Receipt{Room: room, User: user, Type: "m.read",
						ThreadID: r.Data.ThreadID, EventID: ev, TS: r.Data.TS})
				} else {
					err = mxerr.InvalidParam.Msg("bad event id")
				}
			}
			if err != nil {
				e.logDropped(ctx, origin, "m.receipt", err)
			}
		}
	}
	return nil
}

// presence handles m.presence: {push: [{user_id, presence,
// last_active_ago, currently_active, status_msg}]}, users of origin only.
func (e *EDUs) presence(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var c struct {
		Push []struct {
			UserID          string `json:"user_id"`
			Presence        string `json:"presence"`
			LastActiveAgo   *int64 `json:"last_active_ago"`
			CurrentlyActive bool   `json:"currently_active"`
			StatusMsg       string `json:"status_msg"`
		} `json:"push"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON.Msg("m.presence: " + err.Error())
	}
	for _, p := range c.Push {
		user, err := id.ParseUserID(p.UserID)
		switch {
		case err != nil:
			err = mxerr.InvalidParam.Msg("bad user id")
		case user.Server() != origin:
			err = errNotOrigins
		case e.d.Presence != nil:
			ago := int64(-1)
			if p.LastActiveAgo != nil && *p.LastActiveAgo >= 0 {
				ago = *p.LastActiveAgo
			}
			err = e.d.Presence.SetRemotePresence(ctx, syncer.PresenceEntry{User: user, Presence: p.Presence,
				LastActiveAgo: ago, CurrentlyActive: p.CurrentlyActive, StatusMsg: p.StatusMsg})
		}
		if err != nil {
			e.logDropped(ctx, origin, "m.presence", err)
		}
	}
	return nil
}

// device hands the E2EE EDUs to the keys service, which checks them.
func (e *EDUs) device(ctx context.Context, origin id.ServerName, eduType string, content json.RawMessage) error {
	if e.d.Keys == nil {
		e.d.Logger.DebugContext(ctx, "federation: no E2EE service, EDU dropped", slog.String("origin", string(origin)),
			slog.String("edu_type", eduType))
		return nil
	}
	switch eduType {
	case "m.direct_to_device":
		return e.d.Keys.HandleDirectToDevice(ctx, origin, content)
	case "m.device_list_update":
		return e.d.Keys.HandleDeviceListUpdate(ctx, origin, content)
	default:
		return e.d.Keys.HandleSigningKeyUpdate(ctx, origin, content)
	}
}

func (e *EDUs) acl(ctx context.Context, room id.RoomID, origin id.ServerName) error {
	if e.d.ACL == nil {
		return nil
	}
	return e.d.ACL(ctx, room, origin)
}
