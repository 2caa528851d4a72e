package authtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Room builds the events of one room: it numbers event ids, keeps the
// current state and the forward extremities, and fills in auth events
// (auth.AuthEventKeys against the current state), prev events, depth and
// origin_server_ts. Nothing is checked: tests decide what to check.
type Room struct {
	Version roomversion.Version
	ID      id.RoomID
	Creator id.UserID

	state   State
	extrem  []id.EventID
	events  map[id.EventID]*Event
	order   []*Event
	counter int
	ts      int64
}

// Spec describes one event to build. Zero fields are filled in: ID (a
// fresh id), Auth (selected from the room's current state), Prev (the
// room's forward extremities), Depth (1 + the deepest prev event), TS (a
// counter).
type Spec struct {
	Type     string
	StateKey *string
	Sender   id.UserID
	Content  any
	Redacts  id.EventID

	ID   id.EventID
	Auth []id.EventID
	Prev []id.EventID
	// NoAuth and NoPrev force empty lists where nil would mean "fill in".
	NoAuth, NoPrev bool
	Depth          int64
	TS             int64
	Signers        []id.ServerName
}

// NewRoom starts a room with its create event sent by creator. Content
// extras (for example "m.federate", "additional_creators") are merged into
// the create content; "creator" and "room_version" are set as the version
// requires.
func NewRoom(rv roomversion.Version, creator id.UserID, extra map[string]any) *Room {
	r := &Room{Version: rv, Creator: creator, state: State{}, events: map[id.EventID]*Event{}, ts: 1000}
	content := map[string]any{"room_version": string(rv.ID)}
	if !rv.V11Semantics {
		content["creator"] = string(creator)
	}
	for k, v := range extra {
		content[k] = v
	}
	createID := r.nextID(creator.Server())
	if !rv.CreateEventDefinesRoomID {
		r.ID = id.RoomID("!room:" + string(creator.Server()))
	} else {
		r.ID = id.RoomID("!" + strings.TrimPrefix(string(createID), "$"))
	}
	r.Add(Spec{Type: auth.TypeCreate, StateKey: SK(""), Sender: creator, Content: content, ID: createID, NoAuth: true, NoPrev: true})
	return r
}

// NewStandardRoom is NewRoom followed by the creator's join, power levels
// giving the creator 100 (not in v12, where creators need no entry), and
// the given join rule: the shape /createRoom produces.
func NewStandardRoom(rv roomversion.Version, creator id.UserID, joinRule auth.JoinRule) *Room {
	r := NewRoom(rv, creator, nil)
	r.Add(Spec{Type: auth.TypeMember, StateKey: SK(string(creator)), Sender: creator, Content: map[string]any{"membership": "join"}})
	users := map[string]any{}
	if !rv.CreateEventDefinesRoomID {
		users[string(creator)] = 100
	}
	r.Add(Spec{Type: auth.TypePowerLevels, StateKey: SK(""), Sender: creator, Content: map[string]any{"users": users}})
	r.Add(Spec{Type: auth.TypeJoinRules, StateKey: SK(""), Sender: creator, Content: map[string]any{"join_rule": string(joinRule)}})
	return r
}

func (r *Room) nextID(server id.ServerName) id.EventID {
	r.counter++
	if r.Version.EventFormat == roomversion.FormatV1 {
		return id.EventID(fmt.Sprintf("$e%d:%s", r.counter, server))
	}
	return id.EventID(fmt.Sprintf("$e%d", r.counter))
}

// Build makes an event from spec without changing the room's state or
// extremities; the room remembers it for Event.
func (r *Room) Build(s Spec) *Event {
	ev := &Event{
		ID: s.ID, Room: r.ID, EvType: s.Type, Key: s.StateKey, From: s.Sender,
		Body: Content(s.Content), Auth: s.Auth, Prev: s.Prev, RedactID: s.Redacts,
		Dep: s.Depth, TS: s.TS, Signers: s.Signers,
	}
	if ev.ID == "" {
		ev.ID = r.nextID(s.Sender.Server())
	}
	if s.Type == auth.TypeCreate && r.Version.CreateEventDefinesRoomID {
		ev.Room = ""
	}
	if ev.Auth == nil && !s.NoAuth {
		ev.Auth = r.selectAuth(ev)
	}
	if ev.Prev == nil && !s.NoPrev {
		ev.Prev = slices.Clone(r.extrem)
	}
	if ev.Dep == 0 {
		for _, p := range ev.Prev {
			if pe := r.events[p]; pe != nil && pe.Dep >= ev.Dep {
				ev.Dep = pe.Dep + 1
			}
		}
		if ev.Dep == 0 {
			ev.Dep = 1
		}
	}
	if ev.TS == 0 {
		r.ts++
		ev.TS = r.ts
	}
	r.events[ev.ID] = ev
	r.order = append(r.order, ev)
	return ev
}

func (r *Room) selectAuth(ev *Event) []id.EventID {
	var out []id.EventID
	for _, k := range auth.AuthEventKeys(r.Version, ev) {
		if se := r.state.StateEvent(k.Type, k.StateKey); se != nil {
			out = append(out, se.EventID())
		}
	}
	return out
}

// Apply makes ev the room's only forward extremity and, for a state
// event, the current state for its key.
func (r *Room) Apply(ev *Event) {
	if ev.Key != nil {
		// In place: State and SetState copy, so nobody else holds r.state.
		r.state[auth.StateKey{Type: ev.EvType, StateKey: *ev.Key}] = ev
	}
	r.extrem = []id.EventID{ev.ID}
}

// Add is Build followed by Apply.
func (r *Room) Add(s Spec) *Event {
	ev := r.Build(s)
	r.Apply(ev)
	return ev
}

// Member adds an m.room.member event for target sent by sender.
func (r *Room) Member(sender, target id.UserID, membership auth.Membership) *Event {
	return r.Add(Spec{Type: auth.TypeMember, StateKey: SK(string(target)), Sender: sender,
		Content: map[string]any{"membership": string(membership)}})
}

// Join adds a self-join of u.
func (r *Room) Join(u id.UserID) *Event { return r.Member(u, u, auth.Join) }

// State returns a copy of the current state.
func (r *Room) State() State { return r.state.With() }

// SetState replaces the current state (to build forks).
func (r *Room) SetState(s State) { r.state = s.With() }

// Extremities returns the current forward extremities.
func (r *Room) Extremities() []id.EventID { return slices.Clone(r.extrem) }

// SetExtremities replaces the forward extremities (to build forks).
func (r *Room) SetExtremities(ids ...id.EventID) { r.extrem = slices.Clone(ids) }

// Event returns a built event by id, or nil.
func (r *Room) Event(eid id.EventID) *Event { return r.events[eid] }

// Events returns every built event in build order.
func (r *Room) Events() []*Event { return slices.Clone(r.order) }

// CreateEvent returns the room's create event.
func (r *Room) CreateEvent() *Event { return r.order[0] }

// AuthEvents returns the auth events of ev that the room knows, in order;
// in room version 12 the create event is added, as CheckAuthEvents wants.
func (r *Room) AuthEvents(ev auth.Event) []auth.Event {
	var out []auth.Event
	if r.Version.CreateEventDefinesRoomID {
		out = append(out, r.CreateEvent())
	}
	for _, a := range ev.AuthEventIDs() {
		if e := r.events[a]; e != nil {
			out = append(out, e)
		}
	}
	return out
}
