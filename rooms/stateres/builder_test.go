package stateres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// testEvent is an event as the tests build it: ids chosen by name so the
// event id tie-breaks are under the test's control.
type testEvent struct {
	id       id.EventID
	room     id.RoomID
	typ      string
	stateKey *string
	sender   id.UserID
	content  json.RawMessage
	authIDs  []id.EventID
	prevIDs  []id.EventID
	depth    int64
	ts       int64
	rejected bool
}

func (e *testEvent) EventID() id.EventID        { return e.id }
func (e *testEvent) RoomID() id.RoomID          { return e.room }
func (e *testEvent) Type() string               { return e.typ }
func (e *testEvent) StateKey() *string          { return e.stateKey }
func (e *testEvent) Sender() id.UserID          { return e.sender }
func (e *testEvent) Content() json.RawMessage   { return e.content }
func (e *testEvent) AuthEventIDs() []id.EventID { return e.authIDs }
func (e *testEvent) PrevEventIDs() []id.EventID { return e.prevIDs }
func (e *testEvent) Redacts() id.EventID        { return "" }
func (e *testEvent) Depth() int64               { return e.depth }
func (e *testEvent) OriginServerTS() int64      { return e.ts }
func (e *testEvent) Rejected() bool             { return e.rejected }

// testRoom builds a room's event graph: each event's auth events are chosen
// from a given state as the spec's auth events selection does
// (server-server API "Auth events selection"), so the DAGs have the shape
// real rooms have.
type testRoom struct {
	t      testing.TB
	rv     roomversion.Version
	id     id.RoomID
	events map[id.EventID]*testEvent
	clock  int64
	// clockDepth makes depth the clock instead of one more than the
	// deepest event of the state, for rooms too big to scan per event.
	clockDepth bool
}

const (
	alice   id.UserID = "@alice:a.example"
	bob     id.UserID = "@bob:b.example"
	charlie id.UserID = "@charlie:c.example"
	zara    id.UserID = "@zara:z.example"
	evelyn  id.UserID = "@evelyn:e.example"
)

// ev describes one event to add.
type ev struct {
	name     string // the event id is "$"+name (":x.example" appended for v1/v2 formats)
	typ      string
	stateKey *string
	sender   id.UserID
	content  string
	ts       int64 // 0: the room clock's next tick
	// auth, when set, replaces the auth events selection.
	auth []string
}

func sk(s string) *string { return &s }

func member(user id.UserID, membership string, sender id.UserID, name string) ev {
	return ev{name: name, typ: typeMember, stateKey: sk(string(user)), sender: sender,
		content: fmt.Sprintf(`{"membership":%q}`, membership)}
}

func powerLevels(name string, sender id.UserID, users map[id.UserID]int) ev {
	b, _ := json.Marshal(map[string]any{"users": users})
	return ev{name: name, typ: typePowerLevels, stateKey: sk(""), sender: sender, content: string(b)}
}

func joinRules(name string, sender id.UserID, rule string) ev {
	return ev{name: name, typ: typeJoinRules, stateKey: sk(""), sender: sender,
		content: fmt.Sprintf(`{"join_rule":%q}`, rule)}
}

func topic(name string, sender id.UserID, text string) ev {
	return ev{name: name, typ: "m.room.topic", stateKey: sk(""), sender: sender,
		content: fmt.Sprintf(`{"topic":%q}`, text)}
}

func newTestRoom(t testing.TB, version roomversion.ID) *testRoom {
	t.Helper()
	return &testRoom{t: t, rv: roomversion.MustLookup(version), events: make(map[id.EventID]*testEvent)}
}

func (r *testRoom) eventID(name string) id.EventID {
	if r.rv.EventFormat == roomversion.FormatV1 {
		return id.EventID("$" + name + ":x.example")
	}
	return id.EventID("$" + name)
}

// create starts the room with alice's create event, her join, power levels
// giving her 100, and public join rules, returning the state after them.
func (r *testRoom) create() StateMap {
	r.t.Helper()
	content := `{"room_version":"` + string(r.rv.ID) + `"}`
	if !r.rv.V11Semantics {
		content = `{"creator":"` + string(alice) + `","room_version":"` + string(r.rv.ID) + `"}`
	}
	cid := r.eventID("CREATE")
	if r.rv.CreateEventDefinesRoomID {
		r.id = id.RoomID("!" + strings.TrimPrefix(string(cid), "$"))
	} else {
		r.id = "!room:a.example"
	}
	state := r.send(StateMap{}, ev{name: "CREATE", typ: typeCreate, stateKey: sk(""), sender: alice, content: content})
	state = r.send(state, member(alice, "join", alice, "IMA"))
	users := map[id.UserID]int{alice: 100}
	if r.rv.CreateEventDefinesRoomID {
		users = map[id.UserID]int{} // v12 creators may not be listed
	}
	state = r.send(state, powerLevels("IPOWER", alice, users))
	return r.send(state, joinRules("IJR", alice, "public"))
}

// send adds e with auth events selected from state and returns the state
// after it.
func (r *testRoom) send(state StateMap, e ev) StateMap {
	r.t.Helper()
	te := r.add(state, e)
	out := cloneMap(state)
	if te.stateKey != nil {
		out[auth.StateKey{Type: te.typ, StateKey: *te.stateKey}] = te.id
	}
	return out
}

func (r *testRoom) add(state StateMap, e ev) *testEvent {
	r.t.Helper()
	eid := r.eventID(e.name)
	if _, dup := r.events[eid]; dup {
		r.t.Fatalf("event %s added twice", eid)
	}
	r.clock++
	ts := e.ts
	if ts == 0 {
		ts = r.clock
	}
	te := &testEvent{id: eid, room: r.id, typ: e.typ, stateKey: e.stateKey, sender: e.sender,
		content: json.RawMessage(e.content), ts: ts}
	if e.typ == typeCreate && r.rv.CreateEventDefinesRoomID {
		te.room = ""
	}
	if e.auth != nil {
		for _, a := range e.auth {
			te.authIDs = append(te.authIDs, r.eventID(a))
		}
	} else if e.typ != typeCreate {
		te.authIDs = r.selectAuth(state, te)
	}
	var depth int64
	for _, prev := range state {
		if r.clockDepth {
			depth = r.clock
			break
		}
		if p := r.events[prev]; p != nil && p.depth >= depth {
			depth = p.depth + 1
		}
	}
	te.depth = depth
	r.events[eid] = te
	return te
}

// selectAuth follows the spec's auth events selection: create (not in v12),
// power levels, the sender's membership, and for membership events the
// target's membership and, for join/invite/knock, the join rules.
func (r *testRoom) selectAuth(state StateMap, e *testEvent) []id.EventID {
	var out []id.EventID
	add := func(typ, key string) {
		if v, ok := state[auth.StateKey{Type: typ, StateKey: key}]; ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if !r.rv.CreateEventDefinesRoomID {
		add(typeCreate, "")
	}
	add(typePowerLevels, "")
	add(typeMember, string(e.sender))
	if e.typ == typeMember && e.stateKey != nil {
		add(typeMember, *e.stateKey)
		m, _ := auth.ParseMember(e.content)
		if m != nil && (m.Membership == auth.Join || m.Membership == auth.Invite || m.Membership == auth.Knock) {
			add(typeJoinRules, "")
		}
	}
	return out
}

// Events implements EventSource over the room's events.
func (r *testRoom) Events(_ context.Context, ids []id.EventID) (map[id.EventID]auth.Event, error) {
	out := make(map[id.EventID]auth.Event, len(ids))
	for _, e := range ids {
		if te, ok := r.events[e]; ok {
			out[e] = te
		}
	}
	return out, nil
}

// ids maps names to event ids.
func (r *testRoom) ids(names ...string) []id.EventID {
	out := make([]id.EventID, len(names))
	for i, n := range names {
		out[i] = r.eventID(n)
	}
	return out
}

// resolve resolves with the room's version and auth.Check, failing the
// test on error.
func (r *testRoom) resolve(sets ...StateMap) StateMap {
	r.t.Helper()
	got, err := Resolve(context.Background(), r.rv, sets, r)
	if err != nil {
		r.t.Fatalf("resolve: %v", err)
	}
	return got
}

// want asserts that state holds, for each key, the named event (or nothing
// for an empty name).
func (r *testRoom) want(state StateMap, key auth.StateKey, name string) {
	r.t.Helper()
	got, ok := state[key]
	if name == "" {
		if ok {
			r.t.Errorf("%s/%s = %s, want absent", key.Type, key.StateKey, got)
		}
		return
	}
	if want := r.eventID(name); got != want {
		r.t.Errorf("%s/%s = %q, want %q", key.Type, key.StateKey, got, want)
	}
}

func memberKey(u id.UserID) auth.StateKey {
	return auth.StateKey{Type: typeMember, StateKey: string(u)}
}

var (
	plKey    = auth.StateKey{Type: typePowerLevels}
	jrKey    = auth.StateKey{Type: typeJoinRules}
	topicKey = auth.StateKey{Type: "m.room.topic"}
)
