package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// wsSyncBatch is a pushed "sync" frame: Body is exactly a /sync response.
type wsSyncBatch struct {
	Type string           `json:"type"`
	ID   string           `json:"id,omitempty"`
	Body *syncer.Response `json:"body"`
}

// syncBatchFrame is the "sync" frame of resp, wsSyncBatch's JSON with
// the answer as its MarshalJSON writes it (compact, tested byte for byte
// against encoding/json): json.Marshal would validate and compact the
// answer again, a copy of every batch of a fan-out (issue #9).
func syncBatchFrame(streamID string, resp *syncer.Response) []byte {
	body, err := resp.MarshalJSON()
	if err != nil {
		panic(err) // as mustMarshal: the answer's types always encode
	}
	out := make([]byte, 0, len(body)+len(streamID)+32)
	out = append(out, `{"type":"sync",`...)
	if streamID != "" {
		out = append(append(append(out, `"id":`...), mustMarshal(streamID)...), ',')
	}
	out = append(append(out, `"body":`...), body...)
	return append(out, '}')
}

// wsSyncError is a "sync_error" frame: the stream stopped with the Matrix
// error Body, which /sync would have answered with Status.
type wsSyncError struct {
	Type   string         `json:"type"`
	ID     string         `json:"id,omitempty"`
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
}

// startSync (re)starts the sync stream of a "sync" frame. The previous
// stream stops first, and any of its batches still queued is dropped, so
// that after this frame only batches of the new stream arrive.
func (c *wsConn) startSync(f wsInFrame) {
	req := syncer.Request{
		User:          c.requester.UserID,
		Device:        c.requester.DeviceID,
		FullState:     f.FullState,
		UseStateAfter: f.UseStateAfter,
		SetPresence:   f.SetPresence,
		Timeout:       c.limits.syncTimeout,
	}
	if f.Since != nil {
		req.Since = *f.Since
	}
	gen := c.syncGen.Add(1)
	c.stopSync()
	filter, err := syncFilterParam(f.Filter)
	if err != nil {
		c.sendSyncError(c.ctx, f.ID, err)
		return
	}
	req.Filter = filter
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	c.syncStop, c.syncDone = cancel, done
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		c.runSync(ctx, gen, f.ID, req)
	}()
}

// stopSync stops the running stream, if any, and waits for it. Only the
// reader goroutine (and serve, after it) starts and stops streams.
func (c *wsConn) stopSync() {
	if c.syncStop == nil {
		return
	}
	c.syncStop()
	<-c.syncDone
	c.syncStop, c.syncDone = nil, nil
}

// syncFilterParam turns the frame's filter — a filter id, an inline
// filter object or nothing — into /sync's filter parameter.
func syncFilterParam(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", mxerr.BadJSON.Msg("filter must be a filter id or a filter object")
		}
		return s, nil
	case raw[0] == '{':
		return string(raw), nil
	}
	return "", mxerr.BadJSON.Msg("filter must be a filter id or a filter object")
}

// runSync is the stream: Sync from since (waiting until something
// concerns the user), push the batch, wait until it is written, and go
// on from its next_batch. Building the next batch only once the previous
// one is on the wire is the flow control: a slow client holds at most one
// batch in memory, and the next Sync from the last next_batch merges
// everything that committed meanwhile — larger batches, never a gap.
func (c *wsConn) runSync(ctx context.Context, gen uint64, streamID string, req syncer.Request) {
	first := true
	for {
		// The token may have been logged out or expired since the
		// connection opened: the stream must not outlive it.
		if _, err := c.api.Users.Authenticate(ctx, c.token, clientIP(c.upgrade)); err != nil {
			if ctx.Err() == nil {
				c.closeForAuthError(err)
			}
			return
		}
		started := time.Now()
		resp, err := c.api.Sync.Sync(ctx, req)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.sendSyncError(ctx, streamID, err)
			return
		}
		if !first && resp.NextBatch == req.Since {
			// Nothing at all happened within the long-poll. Sync returns
			// early with nothing only when the notifier is closing: do not
			// spin until the connection closes too.
			if time.Since(started) < time.Second {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
			continue
		}
		c.syncBatches.Add(1)
		queued := c.queuedSync.Add(1)
		for {
			high := c.maxQueuedSync.Load()
			if queued <= high || c.maxQueuedSync.CompareAndSwap(high, queued) {
				break
			}
		}
		written := make(chan struct{})
		frame := wsOutFrame{
			data:    syncBatchFrame(streamID, resp),
			syncGen: gen, written: written,
		}
		if !c.send(ctx, frame) {
			c.queuedSync.Add(-1)
			return
		}
		select {
		case <-written:
		case <-ctx.Done():
			return
		}
		req.Since, req.FullState, first = resp.NextBatch, false, false
	}
}

// sendSyncError reports why the stream stopped (a bad since token, an
// unknown filter, …) with the Matrix error /sync would have answered.
func (c *wsConn) sendSyncError(ctx context.Context, streamID string, err error) {
	m, known := toMatrixError(err)
	if !known {
		c.api.Logger.ErrorContext(ctx, "websocket sync failed",
			slog.String("user_id", string(c.requester.UserID)), slog.String("error", err.Error()))
	}
	c.send(ctx, wsOutFrame{data: mustMarshal(wsSyncError{
		Type: "sync_error", ID: streamID, Status: m.Status, Body: m.Body(),
	})})
}
