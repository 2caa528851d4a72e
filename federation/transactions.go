package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// Inbound transactions (server-server API, "Transactions": PUT
// /_matrix/federation/v1/send/{txnId}). A transaction carries at most 50
// PDUs and 100 EDUs; each PDU goes through the rooms domain's inbound
// pipeline — the PDUs of one room one at a time in the order they came,
// different rooms in parallel — and the answer says, per PDU, whether it
// was accepted. A transaction id is answered once: a retry gets the first
// answer back without being processed again.

// Transaction size limits (spec "Transactions").
const (
	maxTxnPDUs = 50
	maxTxnEDUs = 100
)

// InboundPDUs is the rooms domain's inbound pipeline (*rooms.Inbound).
type InboundPDUs interface {
	ReceivePDU(ctx context.Context, origin id.ServerName, raw json.RawMessage) (id.EventID, error)
}

// EDUHandler takes the EDUs of inbound transactions (federation/edus.go).
type EDUHandler interface {
	HandleEDU(ctx context.Context, origin id.ServerName, eduType string, content json.RawMessage)
}

// InboundTxnStore remembers the answers to transactions
// (storage.InboundTxns).
type InboundTxnStore interface {
	InboundTxn(ctx context.Context, origin id.ServerName, txnID string) (response []byte, ok bool, err error)
	SaveInboundTxn(ctx context.Context, origin id.ServerName, txnID string, response []byte) error
}

var _ InboundPDUs = (*rooms.Inbound)(nil)

// Transactions processes inbound transactions.
type Transactions struct {
	pdus   InboundPDUs
	txns   InboundTxnStore
	edus   EDUHandler
	logger *slog.Logger

	mu       sync.Mutex
	inFlight map[txnKey]chan struct{}
	// lastPrune is when answers older than txnRetention were last
	// forgotten (when the store can).
	lastPrune time.Time
}

// txnRetention is how long a transaction's answer is kept for retries:
// senders retry for minutes to hours, not days.
const txnRetention = 7 * 24 * time.Hour

// txnPruner is a store that can forget old answers (storage.InboundTxns).
type txnPruner interface {
	PruneInboundTxns(ctx context.Context, maxAge time.Duration) (int64, error)
}

type txnKey struct {
	origin id.ServerName
	txnID  string
}

// NewTransactions returns the transaction processor. edus may be nil: EDUs
// are then dropped.
func NewTransactions(pdus InboundPDUs, txns InboundTxnStore, edus EDUHandler, logger *slog.Logger) *Transactions {
	if logger == nil {
		logger = slog.Default()
	}
	return &Transactions{pdus: pdus, txns: txns, edus: edus, logger: logger, inFlight: map[txnKey]chan struct{}{}}
}

// Transaction is the body of PUT /send/{txnId}.
type Transaction struct {
	Origin         id.ServerName     `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []EDU             `json:"edus,omitempty"`
}

// EDU is one ephemeral data unit of a transaction.
type EDU struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// PDUResult is the answer about one PDU: empty when it was accepted.
type PDUResult struct {
	Error string `json:"error,omitempty"`
}

// TransactionResponse is the answer to PUT /send/{txnId}.
type TransactionResponse struct {
	PDUs map[id.EventID]PDUResult `json:"pdus"`
}

// ErrTooLarge: the transaction carries more than 50 PDUs or 100 EDUs.
var ErrTooLarge = mxerr.BadJSON.Msgf("a transaction carries at most %d PDUs and %d EDUs", maxTxnPDUs, maxTxnEDUs)

// Process handles origin's transaction txnID and returns the JSON answer.
// A transaction answered before is answered the same way, unprocessed; a
// retry that arrives while the first attempt runs waits for it. An error
// means the transaction was not (completely) processed and must be
// retried: nothing was recorded.
func (t *Transactions) Process(ctx context.Context, origin id.ServerName, txnID string, txn *Transaction) ([]byte, error) {
	if len(txn.PDUs) > maxTxnPDUs || len(txn.EDUs) > maxTxnEDUs {
		return nil, ErrTooLarge
	}
	key := txnKey{origin, txnID}
	for {
		t.mu.Lock()
		wait, busy := t.inFlight[key]
		if !busy {
			t.inFlight[key] = make(chan struct{})
		}
		t.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() {
		t.mu.Lock()
		close(t.inFlight[key])
		delete(t.inFlight, key)
		t.mu.Unlock()
	}()
	if resp, ok, err := t.txns.InboundTxn(ctx, origin, txnID); err != nil {
		return nil, err
	} else if ok {
		return resp, nil
	}
	results, err := t.processPDUs(ctx, origin, txn.PDUs)
	if err != nil {
		return nil, err
	}
	if t.edus != nil {
		for _, e := range txn.EDUs {
			t.edus.HandleEDU(ctx, origin, e.Type, e.Content)
		}
	}
	resp, err := json.Marshal(TransactionResponse{PDUs: results})
	if err != nil {
		return nil, err
	}
	if err := t.txns.SaveInboundTxn(ctx, origin, txnID, resp); err != nil {
		return nil, err
	}
	t.maybePrune(ctx)
	return resp, nil
}

// maybePrune forgets answers older than txnRetention, at most once an
// hour.
func (t *Transactions) maybePrune(ctx context.Context) {
	p, ok := t.txns.(txnPruner)
	if !ok {
		return
	}
	t.mu.Lock()
	due := time.Since(t.lastPrune) > time.Hour
	if due {
		t.lastPrune = time.Now()
	}
	t.mu.Unlock()
	if !due {
		return
	}
	if n, err := p.PruneInboundTxns(ctx, txnRetention); err != nil {
		t.logger.WarnContext(ctx, "pruning inbound transactions failed", slog.String("error", err.Error()))
	} else if n > 0 {
		t.logger.DebugContext(ctx, "inbound transactions pruned", slog.Int64("count", n))
	}
}

// processPDUs runs the PDUs through the pipeline, each room's in order on
// its own goroutine. An error that is not about a PDU (the database is
// down) fails the whole transaction.
func (t *Transactions) processPDUs(ctx context.Context, origin id.ServerName, pdus []json.RawMessage) (map[id.EventID]PDUResult, error) {
	results := make(map[id.EventID]PDUResult, len(pdus))
	byRoom := map[id.RoomID][]json.RawMessage{}
	var order []id.RoomID
	for _, raw := range pdus {
		var head struct {
			RoomID  id.RoomID  `json:"room_id"`
			EventID id.EventID `json:"event_id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.RoomID == "" {
			// Without a room there is no room version, hence no event id
			// to answer about (room versions 3 and later): dropped.
			if head.EventID != "" {
				results[head.EventID] = PDUResult{Error: "invalid PDU: no room_id"}
			}
			continue
		}
		if _, ok := byRoom[head.RoomID]; !ok {
			order = append(order, head.RoomID)
		}
		byRoom[head.RoomID] = append(byRoom[head.RoomID], raw)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	for _, room := range order {
		wg.Add(1)
		go func(room id.RoomID, raws []json.RawMessage) {
			defer wg.Done()
			for _, raw := range raws {
				eid, err := t.pdus.ReceivePDU(ctx, origin, raw)
				res, fatal := pduResult(err)
				if fatal != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("PDU %s in %s: %w", eid, room, fatal))
					mu.Unlock()
					return
				}
				if err != nil {
					t.logger.InfoContext(ctx, "PDU not accepted", slog.String("origin", string(origin)),
						slog.String("room_id", string(room)), slog.String("event_id", string(eid)), slog.String("error", err.Error()))
				}
				if eid == "" {
					eid = eventIDField(raw)
				}
				if eid != "" {
					mu.Lock()
					results[eid] = res
					mu.Unlock()
				}
			}
		}(room, byRoom[room])
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return results, nil
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// pduResult is the answer about a PDU given the pipeline's error; fatal
// is set when the error is not about the PDU.
func pduResult(err error) (res PDUResult, fatal error) {
	switch {
	case err == nil:
		return PDUResult{}, nil
	case errors.Is(err, rooms.ErrRoomNotFound):
		return PDUResult{Error: "unknown room"}, nil
	case errors.Is(err, rooms.ErrPDUDropped), errors.Is(err, rooms.ErrPDURejected):
		return PDUResult{Error: err.Error()}, nil
	}
	return PDUResult{}, err
}

// eventIDField is a PDU's event_id (room versions 1 and 2 carry one).
func eventIDField(raw json.RawMessage) id.EventID {
	var p struct {
		EventID id.EventID `json:"event_id"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.EventID
}
