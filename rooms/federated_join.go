package rooms

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// MakeJoin answers GET /_matrix/federation/v1/make_join/{roomId}/{userId}
// for origin: a join template built on the room's head, checked against
// current state. In a restricted room a user who is neither invited nor
// joined is authorised by one of our members who may invite
// (join_authorised_via_users_server; server-server API, "Restricted
// rooms").
func (s *Service) MakeJoin(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID, versions []roomversion.ID) (*Template, error) {
	h, err := s.residentHeadFor(ctx, origin, room, user)
	if err != nil {
		return nil, err
	}
	if err := versionOffered(h.Version, versions); err != nil {
		return nil, err
	}
	if h.State.Membership(string(user)) == "ban" {
		return nil, mxerr.Forbidden.Msg("the user is banned from the room")
	}
	content := map[string]any{"membership": "join"}
	via, err := s.restrictedJoin(ctx, h, user)
	if err != nil {
		return nil, err
	}
	if via != "" {
		content["join_authorised_via_users_server"] = string(via)
	}
	return s.makeTemplate(h, user, content)
}

// restrictedJoin picks, for user joining a restricted room uninvited, one
// of our joined members who may invite. It returns "" and no error when
// the join is not a restricted one (another join rule, or the user is
// invited or joined); M_UNABLE_TO_AUTHORISE_JOIN when we know none of the
// allowed rooms, M_UNABLE_TO_GRANT_JOIN when the user qualifies but none of
// our members may invite, M_FORBIDDEN when the user qualifies for none.
func (s *Service) restrictedJoin(ctx context.Context, h *Head, user id.UserID) (id.UserID, error) {
	jrEv := h.State.Get(auth.TypeJoinRules, "")
	if jrEv == nil || !h.Version.RestrictedJoins {
		return "", nil
	}
	jr, err := auth.ParseJoinRules(jrEv.Content())
	if err != nil {
		return "", nil
	}
	if jr.JoinRule != auth.JoinRestricted && !(h.Version.KnockRestricted && jr.JoinRule == auth.JoinKnockRestricted) {
		return "", nil
	}
	if m := h.State.Membership(string(user)); m == "invite" || m == "join" {
		return "", nil
	}
	conditions, known, satisfied := 0, false, false
	for _, a := range jr.Allow {
		if a.Type != "m.room_membership" || a.RoomID == "" {
			continue
		}
		conditions++
		other, err := s.store.Head(ctx, a.RoomID)
		if err != nil || !serverInRoom(other.State, s.cfg.ServerName) {
			continue
		}
		known = true
		if other.State.Membership(string(user)) == "join" {
			satisfied = true
			break
		}
	}
	switch {
	case satisfied:
	case conditions > 0 && !known:
		return "", mxerr.UnableToAuthoriseJoin.Msg("this server knows none of the rooms the join rules allow")
	default:
		return "", mxerr.Forbidden.Msg("the user is in none of the rooms the join rules allow")
	}
	pl, err := auth.LoadPowerLevels(h.Version, h.State)
	if err != nil {
		return "", mxerr.UnableToGrantJoin.Msg("the room's power levels are malformed")
	}
	var candidates []id.UserID
	for k, ev := range h.State {
		u := id.UserID(k.StateKey)
		if k.Type == auth.TypeMember && ev.Membership() == "join" && u.Server() == s.cfg.ServerName && pl.UserLevel(u) >= pl.Invite {
			candidates = append(candidates, u)
		}
	}
	if len(candidates) == 0 {
		return "", mxerr.UnableToGrantJoin.Msg("no member of this server may invite; try another server")
	}
	slices.Sort(candidates)
	return candidates[0], nil
}

// JoinAnswer is the resident server's answer to send_join.
type JoinAnswer struct {
	// Event is the join as accepted, with our signature when we
	// authorised a restricted join.
	Event *event.Event
	// State is the room state before the join, AuthChain the auth chain
	// of that state and of the join.
	State, AuthChain []*event.Event
	ServersInRoom    []id.ServerName
	// MembersOmitted: State lacks membership events (omit_members).
	MembersOmitted bool
}

// SendJoin answers PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}:
// it checks the join origin built from our template, signs it when it
// names one of our users as authorising a restricted join, persists it
// (the outbound sender then sends it to the other servers in the room) and
// returns the state before it with the auth chain. omitMembers is the
// joining server's omit_members: the answer then leaves out membership
// events (omitMembers).
func (s *Service) SendJoin(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte, omitMembers bool) (*JoinAnswer, error) {
	if !s.fed.set {
		return nil, errNoFederation
	}
	h, err := s.residentHead(ctx, origin, room)
	if err != nil {
		return nil, err
	}
	ev, err := parseDirectPDU(h.Version, raw, room, eventID, origin, "join")
	if err != nil {
		return nil, err
	}
	if via := joinAuthorisedVia(ev); via != "" && via.Server() == s.cfg.ServerName {
		if _, err := s.restrictedJoin(ctx, h, ev.Sender()); err != nil {
			return nil, err
		}
		if ev, err = s.signAsResident(ev); err != nil {
			return nil, err
		}
	}
	if err := s.verifyPDU(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.accept(ctx, origin, ev); err != nil {
		return nil, err
	}
	state, err := s.StateAt(ctx, room, ev.EventID())
	if err != nil {
		return nil, err
	}
	st := State{}
	for _, e := range state {
		st[auth.StateKey{Type: e.Type(), StateKey: *e.StateKey()}] = e
	}
	ans := &JoinAnswer{Event: ev, State: state, ServersInRoom: serversInRoom(st)}
	if omitMembers {
		ans.State, ans.MembersOmitted = omitMembersOf(state, ev.Sender()), true
	}
	chain, err := s.AuthChain(ctx, room, append(slices.Clone(ans.State), ev))
	if err != nil {
		return nil, err
	}
	if omitMembers {
		// The spec lets a reduced answer leave out of auth_chain what
		// state already carries.
		inState := make(map[id.EventID]bool, len(ans.State))
		for _, e := range ans.State {
			inState[e.EventID()] = true
		}
		chain = slices.DeleteFunc(chain, func(e *event.Event) bool { return inState[e.EventID()] })
	}
	ans.AuthChain = chain
	return ans, nil
}

// heroCount is how many members a room summary names (client-server API,
// m.heroes: up to five).
const heroCount = 5

// omitMembersOf is the state of a reduced send_join answer (server-server
// API, PUT /v2/send_join with omit_members=true, MSC3706): every event but
// the membership events, except the joiner's own and, when the room has
// neither m.room.name nor m.room.canonical_alias, those of the members a
// client's room summary would name as m.heroes for the joiner (up to five
// joined or invited members other than the joiner, the earliest first, as
// /sync picks them), so that the joining server can name the room. The
// members the auth rules need (the senders of the auth events) come with
// the auth chain, which is built from this state. state is ordered by
// depth.
func omitMembersOf(state []*event.Event, joiner id.UserID) []*event.Event {
	named := false
	for _, e := range state {
		if (e.Type() == "m.room.name" || e.Type() == "m.room.canonical_alias") && *e.StateKey() == "" {
			named = true
		}
	}
	heroes := 0
	out := make([]*event.Event, 0, len(state))
	for _, e := range state {
		if e.Type() != auth.TypeMember {
			out = append(out, e)
			continue
		}
		switch m := e.Membership(); {
		case *e.StateKey() == string(joiner):
			out = append(out, e)
		case !named && heroes < heroCount && (m == "join" || m == "invite"):
			heroes++
			out = append(out, e)
		}
	}
	return out
}

// joinAuthorisedVia is content.join_authorised_via_users_server of a join.
func joinAuthorisedVia(ev *event.Event) id.UserID {
	via, _ := ev.ContentValue().GetString("join_authorised_via_users_server")
	u, err := id.ParseUserID(via)
	if err != nil {
		return ""
	}
	return u
}

// JoinVia is Join for a room that may live on other servers: when this
// server is not in the room, the user joins through one of via (the
// client's server_name/via), the server of a pending invite, the room
// id's server or the servers we last saw in the room (server-server API,
// "Joining Rooms").
func (s *Service) JoinVia(ctx context.Context, user id.UserID, room id.RoomID, via []id.ServerName, reason string) (id.RoomID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil && !errors.Is(err, ErrRoomNotFound) {
		return "", err
	}
	if !s.fed.set || user.Server() != s.cfg.ServerName || (err == nil && serverInRoom(h.State, s.cfg.ServerName)) {
		return s.Join(ctx, user, room, reason)
	}
	candidates := s.joinCandidates(ctx, h, user, room, via)
	remoteErr := s.joinRemote(ctx, user, room, candidates, reason)
	if remoteErr == nil {
		return room, nil
	}
	if h != nil && len(serversInRoom(h.State)) == 0 {
		// Nobody is left in the room anywhere, as far as we know: a room
		// everyone left may still be joinable from our own copy.
		if _, err := s.Join(ctx, user, room, reason); err == nil {
			return room, nil
		}
	}
	return "", remoteErr
}

// joinCandidates lists the servers to try, without duplicates or us.
func (s *Service) joinCandidates(ctx context.Context, h *Head, user id.UserID, room id.RoomID, via []id.ServerName) []id.ServerName {
	var out []id.ServerName
	add := func(srv id.ServerName) {
		if srv != "" && srv != s.cfg.ServerName && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	for _, v := range via {
		add(v)
	}
	if s.fed.Invites != nil {
		if inv, stripped, err := s.fed.Invites.RemoteMembership(ctx, room, user); err == nil && inv != nil {
			add(inv.Sender().Server())
			for _, srv := range strippedSenders(stripped) {
				add(srv)
			}
		}
	}
	if h != nil {
		if inv := h.State.Get(auth.TypeMember, string(user)); inv != nil && inv.Membership() == "invite" {
			add(inv.Sender().Server())
		}
	}
	add(room.Server())
	if h != nil {
		for _, srv := range serversInRoom(h.State) {
			add(srv)
		}
	}
	return out
}

// joinRemote tries each candidate in turn and returns the last error.
func (s *Service) joinRemote(ctx context.Context, user id.UserID, room id.RoomID, candidates []id.ServerName, reason string) error {
	if len(candidates) == 0 {
		return mxerr.NotFound.Msg("no known server can help join this room; give one with server_name or via")
	}
	var lastErr error
	for _, srv := range candidates {
		err := s.joinThrough(ctx, srv, user, room, reason)
		if err == nil {
			return nil
		}
		s.logger.InfoContext(ctx, "remote join failed", slog.String("room_id", string(room)),
			slog.String("user_id", string(user)), slog.String("server", string(srv)), slog.String("error", err.Error()))
		lastErr = err
	}
	return lastErr
}

// joinThrough is the join handshake with one resident server: make_join,
// fill and sign the template, send_join, check and import the answer.
func (s *Service) joinThrough(ctx context.Context, srv id.ServerName, user id.UserID, room id.RoomID, reason string) error {
	tpl, err := s.fed.Remote.MakeMembership(ctx, srv, "join", room, user, supportedVersions())
	if err != nil {
		return err
	}
	ev, err := s.fillTemplate(ctx, tpl, room, user, "join", reason)
	if err != nil {
		return err
	}
	resp, err := s.fed.Remote.SendJoin(ctx, srv, ev)
	if err != nil {
		return err
	}
	v := ev.Version()
	if resp.Event != nil {
		// The resident's copy carries its signature (restricted joins);
		// it must be the same event.
		if signed, err := event.Parse(v, resp.Event); err == nil && signed.EventID() == ev.EventID() {
			ev = signed
		}
	}
	if via := joinAuthorisedVia(ev); via != "" {
		if _, ok := ev.Signatures()[via.Server()]; !ok {
			return mxerr.Unknown.Msgf("%s did not sign the restricted join", srv)
		}
	}
	state, err := parsePDUs(v, resp.State)
	if err != nil {
		return mxerr.Unknown.Msgf("%s answered send_join with invalid state: %v", srv, err)
	}
	chain, err := parsePDUs(v, resp.AuthChain)
	if err != nil {
		return mxerr.Unknown.Msgf("%s answered send_join with an invalid auth chain: %v", srv, err)
	}
	if s.fed.Importer == nil {
		return errNoFederation
	}
	return s.fed.Importer.ImportRoom(ctx, v, ev, state, chain)
}

// parsePDUs parses events of room version v.
func parsePDUs[T ~[]byte](v roomversion.Version, raws []T) ([]*event.Event, error) {
	out := make([]*event.Event, 0, len(raws))
	for _, raw := range raws {
		ev, err := event.Parse(v, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// ResolveJoinTarget turns the {roomIdOrAlias} of /join and /knock into a
// room id and the servers that may help join it: a local alias from our
// directory, a remote alias through the alias's server (GET
// /query/directory), a room id as it is.
func (s *Service) ResolveJoinTarget(ctx context.Context, target string) (id.RoomID, []id.ServerName, error) {
	alias, err := id.ParseRoomAlias(target)
	if err != nil || alias.Server() == s.cfg.ServerName || !s.fed.set {
		room, err := s.ResolveRoom(ctx, target)
		return room, nil, err
	}
	return s.fed.Remote.QueryDirectory(ctx, alias)
}
