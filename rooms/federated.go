package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Membership across servers (server-server API, "Joining Rooms", "Leaving
// Rooms", "Inviting to a room", "Knocking upon a room"). The resident side
// (MakeJoin, SendJoin, … in federated_*.go) answers other servers; the
// other side (remote joins, invites, leaves and knocks of local users)
// talks to them through RemoteMembership, which package federation
// implements over its client.

// Template is the answer of make_join, make_leave and make_knock: an
// unsigned event the asking server completes, signs and sends back.
type Template struct {
	Version roomversion.ID
	// Event is the template event object.
	Event json.RawMessage
}

// RemoteJoin is a send_join answer (v2).
type RemoteJoin struct {
	State     []json.RawMessage
	AuthChain []json.RawMessage
	// Event is the join as the resident server signed it (restricted
	// joins); nil when it did not send one.
	Event          json.RawMessage
	MembersOmitted bool
	ServersInRoom  []id.ServerName
}

// RemoteMembership is what the membership handshakes need of other
// servers. Errors a remote answered carry its errcode as an *mxerr.Error
// (so that a client sees M_FORBIDDEN or M_INCOMPATIBLE_ROOM_VERSION as the
// resident server said it).
type RemoteMembership interface {
	// MakeMembership asks server for a template of user's membership
	// ("join", "leave" or "knock") in room; versions are the room
	// versions we support.
	MakeMembership(ctx context.Context, server id.ServerName, membership string, room id.RoomID, user id.UserID, versions []roomversion.ID) (*Template, error)
	SendJoin(ctx context.Context, server id.ServerName, ev *event.Event) (*RemoteJoin, error)
	SendLeave(ctx context.Context, server id.ServerName, ev *event.Event) error
	// SendKnock returns the knock_room_state (stripped state events).
	SendKnock(ctx context.Context, server id.ServerName, ev *event.Event) ([]json.RawMessage, error)
	// SendInvite asks the invitee's server to sign an invite; it returns
	// the event it signed.
	SendInvite(ctx context.Context, server id.ServerName, ev *event.Event, inviteRoomState []json.RawMessage) (json.RawMessage, error)
	// QueryDirectory resolves a remote room alias (GET /query/directory).
	QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error)
}

// RoomImporter persists a room this server joins over federation: the
// join event in the timeline, state and auth chain as outliers, after
// checking them all (server-server API, "the resident server's response
// must be checked"). The inbound PDU pipeline implements it.
type RoomImporter interface {
	ImportRoom(ctx context.Context, version roomversion.Version, join *event.Event, state, authChain []*event.Event) error
}

// InviteStore keeps the invites (and knocks and their retractions) of
// local users to rooms this server is not in, so that they show in /sync.
type InviteStore interface {
	// StoreRemoteMembership records ev (an invite of a local user, a
	// knock, or the leave that rejected or retracted one) with the
	// stripped state the user may see of the room.
	StoreRemoteMembership(ctx context.Context, ev *event.Event, strippedState []json.RawMessage) error
	// RemoteMembership returns the latest such event of user in room
	// with its stripped state, nil when none.
	RemoteMembership(ctx context.Context, room id.RoomID, user id.UserID) (*event.Event, []json.RawMessage, error)
}

// FederationDeps are what federated membership needs; app sets them once,
// before serving, with SetFederation.
type FederationDeps struct {
	Remote RemoteMembership
	// Keys finds servers' signing keys to verify received events.
	Keys event.KeyLookup
	// Importer stores a room joined over federation.
	Importer RoomImporter
	// Invites stores memberships in rooms we are not in.
	Invites InviteStore
	// UserExists reports whether a local user has an account (invites
	// for users who do not exist are refused).
	UserExists func(ctx context.Context, user id.UserID) (bool, error)
	// Accept runs a PDU sent to us directly (send_join, send_leave,
	// send_knock) through the inbound pipeline: the PDU checks, then
	// persist; an error means it was rejected.
	Accept func(ctx context.Context, origin id.ServerName, ev *event.Event) error
}

// fedMembership is the service's view of FederationDeps.
type fedMembership struct {
	FederationDeps
	set bool
}

// SetFederation turns federated membership on.
func (s *Service) SetFederation(d FederationDeps) {
	s.fed = fedMembership{FederationDeps: d, set: true}
}

// errNoFederation answers federation requests while it is off.
var errNoFederation = mxerr.Forbidden.Msg("federation is not enabled on this server")

// supportedVersions are the room versions we can join, newest last.
func supportedVersions() []roomversion.ID {
	var out []roomversion.ID
	for _, v := range roomversion.All() {
		out = append(out, v.ID)
	}
	return out
}

// serverInRoom reports whether server has a joined member in state.
func serverInRoom(st State, server id.ServerName) bool {
	for k, ev := range st {
		if k.Type == auth.TypeMember && ev.Membership() == "join" && id.UserID(k.StateKey).Server() == server {
			return true
		}
	}
	return false
}

// serversInRoom lists the servers with joined members in state, sorted.
func serversInRoom(st State) []id.ServerName {
	var out []id.ServerName
	for k, ev := range st {
		if k.Type != auth.TypeMember || ev.Membership() != "join" {
			continue
		}
		if srv := id.UserID(k.StateKey).Server(); !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	slices.Sort(out)
	return out
}

// residentHead is the room as a resident server answering origin sees it:
// the room must be known, this server in it and origin allowed by the
// server ACL.
func (s *Service) residentHead(ctx context.Context, origin id.ServerName, room id.RoomID) (*Head, error) {
	h, err := s.store.Head(ctx, room)
	if errors.Is(err, ErrRoomNotFound) {
		return nil, mxerr.NotFound.Msg("unknown room")
	}
	if err != nil {
		return nil, err
	}
	if !serverInRoom(h.State, s.cfg.ServerName) {
		return nil, mxerr.NotFound.Msg("this server is not in the room")
	}
	if err := checkACL(h.State, origin); err != nil {
		return nil, err
	}
	return h, nil
}

// checkACL applies the room's m.room.server_acl to origin.
func checkACL(st State, origin id.ServerName) error {
	if !auth.ServerAllowed(st, origin) {
		return mxerr.Forbidden.Msg("server is banned from the room by its server ACL")
	}
	return nil
}

// residentHeadFor is residentHead for a make_* request about user, who
// must be one of origin's users.
func (s *Service) residentHeadFor(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID) (*Head, error) {
	if user.Server() != origin {
		return nil, mxerr.Forbidden.Msg("the user does not belong to the requesting server")
	}
	return s.residentHead(ctx, origin, room)
}

// versionOffered checks that the asking server supports the room's
// version (make_join's ver; absent means ["1"]).
func versionOffered(v roomversion.Version, versions []roomversion.ID) error {
	if len(versions) == 0 {
		versions = []roomversion.ID{"1"}
	}
	if !slices.Contains(versions, v.ID) {
		return mxerr.IncompatibleRoomVersion.Msgf("room version %s is not among the versions your server supports", v.ID).
			With("room_version", string(v.ID))
	}
	return nil
}

// makeTemplate builds user's membership event on the room's head, checks
// it against current state with the auth rules, and returns it without
// hashes and signatures: the template of make_join/make_leave/make_knock.
// The asking server replaces origin, origin_server_ts and (room versions 1
// and 2) event_id, then signs.
func (s *Service) makeTemplate(h *Head, user id.UserID, content map[string]any) (*Template, error) {
	key := string(user)
	ev, err := s.buildEvent(h, draft{Sender: user, Type: auth.TypeMember, StateKey: &key, Content: mustJSON(content)})
	if err != nil {
		return nil, err
	}
	obj := ev.JSON().Without("hashes", "signatures", "unsigned")
	if !obj.Has("origin") {
		// The template's schema names origin; v11+ events may carry it.
		obj = obj.With("origin", canonicaljson.StringValue(string(s.cfg.ServerName)))
	}
	return &Template{Version: h.Version.ID, Event: canonicaljson.Encode(obj)}, nil
}

// parseDirectPDU parses a membership event another server sent us
// directly (send_join, send_leave, send_knock) and applies the spec's
// checks: the path's event and room, type m.room.member, the expected
// membership, sender == state_key, and the sender one of origin's users.
// It does not verify signatures.
func parseDirectPDU(v roomversion.Version, raw []byte, room id.RoomID, eventID id.EventID, origin id.ServerName, membership string) (*event.Event, error) {
	ev, err := event.Parse(v, raw)
	if err != nil {
		return nil, mxerr.BadJSON.Msgf("invalid event: %v", err)
	}
	switch {
	case ev.EventID() != eventID:
		return nil, mxerr.InvalidParam.Msg("the event id does not match the path")
	case ev.RoomID() != room:
		return nil, mxerr.InvalidParam.Msg("the room id does not match the path")
	case ev.Type() != auth.TypeMember:
		return nil, mxerr.InvalidParam.Msg("the event is not an m.room.member event")
	case ev.Membership() != membership:
		return nil, mxerr.InvalidParam.Msgf("the membership is not %s", membership)
	case ev.StateKey() == nil || *ev.StateKey() != string(ev.Sender()):
		return nil, mxerr.InvalidParam.Msg("the state_key is not the sender")
	case ev.Sender().Server() != origin:
		return nil, mxerr.InvalidParam.Msg("the sender does not belong to the requesting server")
	}
	return ev, nil
}

// verifyPDU checks a received event's signatures and content hash; a
// content hash mismatch is refused too, since we are asked to accept
// exactly this event.
func (s *Service) verifyPDU(ctx context.Context, ev *event.Event) error {
	if s.fed.Keys == nil {
		return errNoFederation
	}
	if err := event.Verify(ctx, ev, s.fed.Keys); err != nil {
		return mxerr.InvalidParam.Msgf("the event failed signature checks: %v", err)
	}
	return nil
}

// signAsResident adds our signature to a received event (restricted
// joins, invites of our users). Its hashes are recomputed from its
// content: if the sender's were wrong, the sender's signature no longer
// verifies and the event is refused.
func (s *Service) signAsResident(ev *event.Event) (*event.Event, error) {
	obj, err := event.HashAndSign(ev.Version(), ev.JSON(), s.cfg.ServerName, s.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("sign event %s: %w", ev.EventID(), err)
	}
	return event.Parse(ev.Version(), canonicaljson.Encode(obj))
}

// accept persists a PDU sent to us directly by origin. The resident
// server must send it on to the room's other servers (server-server API,
// "Joining Rooms"): the outbound sender is woken for it, as for our own
// events.
func (s *Service) accept(ctx context.Context, origin id.ServerName, ev *event.Event) error {
	if s.fed.Accept == nil {
		return errNoFederation
	}
	if err := s.fed.Accept(ctx, origin, ev); err != nil {
		return err
	}
	s.outbound.SendEvent(ctx, ev.RoomID(), ev)
	return nil
}
