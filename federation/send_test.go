package federation_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

const (
	sendLocal  = id.ServerName("local.test")
	sendRemote = id.ServerName("remote.test")
)

// countingPDUs counts the PDUs the pipeline sees.
type countingPDUs struct {
	federation.InboundPDUs
	mu sync.Mutex
	n  int
}

func (c *countingPDUs) ReceivePDU(ctx context.Context, origin id.ServerName, raw json.RawMessage) (id.EventID, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.InboundPDUs.ReceivePDU(ctx, origin, raw)
}

type recordedEDUs struct {
	mu    sync.Mutex
	types []string
}

func (r *recordedEDUs) HandleEDU(_ context.Context, _ id.ServerName, eduType string, _ json.RawMessage) {
	r.mu.Lock()
	r.types = append(r.types, eduType)
	r.mu.Unlock()
}

type sendHarness struct {
	t      *testing.T
	ctx    context.Context
	svc    *rooms.Service
	st     *storage.Rooms
	pdus   *countingPDUs
	edus   *recordedEDUs
	txns   *federation.Transactions
	remote signing.Key
	ts     int64
}

func newSendHarness(t *testing.T) *sendHarness {
	t.Helper()
	local, _ := signing.Generate("ed25519:l")
	remote, _ := signing.Generate("ed25519:r")
	pool := pgtest.NewPool(t)
	st := storage.NewRooms(pool)
	svc := rooms.New(rooms.Config{ServerName: sendLocal, Key: local}, st, nil, nil, slog.Default())
	keys := func(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		switch server {
		case sendLocal:
			return local.Public(), nil
		case sendRemote:
			return remote.Public(), nil
		}
		return nil, fmt.Errorf("unknown server %s", server)
	}
	in := rooms.NewInbound(svc, st, rooms.InboundDeps{Keys: keys})
	pdus := &countingPDUs{InboundPDUs: in}
	edus := &recordedEDUs{}
	return &sendHarness{t: t, ctx: context.Background(), svc: svc, st: st, pdus: pdus, edus: edus,
		txns: federation.NewTransactions(pdus, storage.NewInboundTxns(pool), edus, slog.Default()), remote: remote,
		ts: time.Now().UnixMilli()}
}

// room creates a public room on this server that bob@remote.test joined
// and returns it with bob.
func (h *sendHarness) room() (id.RoomID, id.UserID) {
	h.t.Helper()
	alice := id.NewUserID(fmt.Sprintf("alice%d", time.Now().UnixNano()), sendLocal)
	room, err := h.svc.CreateRoom(h.ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		h.t.Fatal(err)
	}
	bob := id.NewUserID(fmt.Sprintf("bob%d", time.Now().UnixNano()), sendRemote)
	sk := string(bob)
	h.process("join-"+string(room), h.next(room, bob, auth.TypeMember, &sk, `{"membership":"join"}`))
	return room, bob
}

// next builds an event of bob's server on the room's current head.
func (h *sendHarness) next(room id.RoomID, sender id.UserID, typ string, stateKey *string, content string) *event.Event {
	h.t.Helper()
	hd, err := h.st.Head(h.ctx, room)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.on(hd, hd.Extremities, sender, typ, stateKey, content)
}

func (h *sendHarness) on(hd *rooms.Head, prev []*event.Event, sender id.UserID, typ string, stateKey *string, content string) *event.Event {
	h.t.Helper()
	var authRefs, prevRefs []event.Ref
	for _, k := range auth.SelectAuthEvents(hd.Version, typ, stateKey, sender, json.RawMessage(content)) {
		if ev := hd.State[k]; ev != nil {
			authRefs = append(authRefs, ev.Ref())
		}
	}
	var depth int64
	for _, p := range prev {
		prevRefs = append(prevRefs, p.Ref())
		depth = max(depth, p.Depth())
	}
	h.ts++
	ev, err := event.Build(hd.Version, event.Proto{Sender: sender, Type: typ, StateKey: stateKey, Content: json.RawMessage(content),
		RoomID: hd.RoomID, PrevEvents: prevRefs, AuthEvents: authRefs, Depth: depth + 1, OriginServerTS: h.ts}, sendRemote, h.remote)
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

func (h *sendHarness) process(txnID string, evs ...*event.Event) federation.TransactionResponse {
	h.t.Helper()
	txn := &federation.Transaction{Origin: sendRemote}
	for _, ev := range evs {
		txn.PDUs = append(txn.PDUs, ev.Raw())
	}
	raw, err := h.txns.Process(h.ctx, sendRemote, txnID, txn)
	if err != nil {
		h.t.Fatal(err)
	}
	var resp federation.TransactionResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		h.t.Fatalf("answer %s: %v", raw, err)
	}
	return resp
}

func TestSendTransactionAnswersPerPDU(t *testing.T) {
	h := newSendHarness(t)
	room, bob := h.room()
	msg := h.next(room, bob, "m.room.message", nil, `{"body":"hi"}`)
	spam := h.next(room, id.NewUserID("mallory", sendRemote), "m.room.message", nil, `{"body":"spam"}`)
	unknown := h.next(room, bob, "m.room.message", nil, `{}`)
	unknownRaw := strings.Replace(string(unknown.Raw()), string(room), "!nowhere:remote.test", 1)
	txn := &federation.Transaction{Origin: sendRemote, PDUs: []json.RawMessage{msg.Raw(), spam.Raw(), json.RawMessage(unknownRaw)},
		EDUs: []federation.EDU{{Type: "m.typing", Content: json.RawMessage(`{}`)}}}
	raw, err := h.txns.Process(h.ctx, sendRemote, "t1", txn)
	if err != nil {
		t.Fatal(err)
	}
	var resp federation.TransactionResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	if r, ok := resp.PDUs[msg.EventID()]; !ok || r.Error != "" {
		t.Errorf("answer about the message %+v (present %v), want {}", r, ok)
	}
	if r := resp.PDUs[spam.EventID()]; !strings.Contains(r.Error, "rejected") {
		t.Errorf("answer about the spam %+v, want a rejection", r)
	}
	if !strings.Contains(string(raw), `"pdus":{`) || strings.Contains(string(raw), `"$`+string(msg.EventID())[1:]+`":{"error"`) {
		t.Errorf("answer %s", raw)
	}
	if len(h.edus.types) != 1 || h.edus.types[0] != "m.typing" {
		t.Errorf("EDUs handed on %v, want the m.typing", h.edus.types)
	}
	// A retry gets the same answer without processing anything again.
	before := h.pdus.n
	again, err := h.txns.Process(h.ctx, sendRemote, "t1", txn)
	if err != nil || string(again) != string(raw) {
		t.Fatalf("retry answered %s, %v; want %s", again, err, raw)
	}
	if h.pdus.n != before || len(h.edus.types) != 1 {
		t.Fatal("a retried transaction was processed again")
	}
}

func TestSendTransactionLimits(t *testing.T) {
	h := newSendHarness(t)
	tests := []struct {
		name       string
		pdus, edus int
	}{
		{"51 PDUs", 51, 0},
		{"101 EDUs", 0, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txn := &federation.Transaction{PDUs: make([]json.RawMessage, tt.pdus), EDUs: make([]federation.EDU, tt.edus)}
			_, err := h.txns.Process(h.ctx, sendRemote, "big-"+tt.name, txn)
			if me, ok := mxerr.As(err); !ok || me.Code != "M_BAD_JSON" || me.Status != 400 {
				t.Fatalf("Process = %v, want 400 M_BAD_JSON", err)
			}
		})
	}
	if h.pdus.n != 0 {
		t.Fatal("an oversized transaction was processed")
	}
}

func TestSendTransactionRoomsInParallelEachInOrder(t *testing.T) {
	h := newSendHarness(t)
	type roomChain struct {
		room  id.RoomID
		chain []*event.Event
	}
	var rs []roomChain
	for range 3 {
		room, bob := h.room()
		hd, _ := h.st.Head(h.ctx, room)
		prev := hd.Extremities
		var chain []*event.Event
		for i := range 10 {
			ev := h.on(hd, prev, bob, "m.room.message", nil, fmt.Sprintf(`{"body":"%d"}`, i))
			chain = append(chain, ev)
			prev = []*event.Event{ev}
		}
		rs = append(rs, roomChain{room, chain})
	}
	// One transaction interleaving the three rooms' chains.
	var all []*event.Event
	for i := range 10 {
		for _, rc := range rs {
			all = append(all, rc.chain[i])
		}
	}
	resp := h.process("mixed", all...)
	for _, ev := range all {
		if r, ok := resp.PDUs[ev.EventID()]; !ok || r.Error != "" {
			t.Fatalf("%s: %+v (present %v)", ev.EventID(), r, ok)
		}
	}
	for _, rc := range rs {
		evs, err := h.st.Timeline(h.ctx, rc.room, 0, rooms.Forward, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := evs[len(evs)-10:]
		for i, se := range got {
			if se.Event.EventID() != rc.chain[i].EventID() {
				t.Fatalf("room %s: event %d is %s, want %s", rc.room, i, se.Event.EventID(), rc.chain[i].EventID())
			}
		}
	}
}
