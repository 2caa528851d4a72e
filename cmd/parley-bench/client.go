package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// client talks the standard Client-Server API to one homeserver. It is
// safe for concurrent use: every simulated user shares its connection pool.
type client struct {
	base string
	hc   *http.Client
	// rateLimited counts 429 answers that were retried: a server that rate
	// limits the tool's users shows it in the results instead of failing.
	rateLimited atomic.Int64
}

func newClient(base string) *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback benchmarks never go through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit: thousands of long-polls share the pool
		MaxIdleConnsPerHost: 1 << 20,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &client{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr}}
}

// matrixError is a non-2xx answer.
type matrixError struct {
	Status  int
	Errcode string `json:"errcode"`
	Message string `json:"error"`
	// RetryAfterMS is set with M_LIMIT_EXCEEDED.
	RetryAfterMS int64 `json:"retry_after_ms"`
	raw          []byte
}

func (e *matrixError) Error() string {
	if e.Errcode != "" {
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Errcode, e.Message)
	}
	return fmt.Sprintf("HTTP %d: %.200s", e.Status, e.raw)
}

// errcodeOf is the Matrix errcode of err, or a short class for transport
// failures, for counting errors by kind.
func errcodeOf(err error) string {
	var me *matrixError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &me) && me.Errcode != "":
		return me.Errcode
	case errors.As(err, &me):
		return "HTTP_" + strconv.Itoa(me.Status)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	default:
		return "transport"
	}
}

// do sends one request (body encoded as JSON when not nil) and decodes a
// 2xx answer into out (when not nil). 429 answers are retried after the
// server's retry_after_ms, a few times.
func (c *client) do(ctx context.Context, method, path, token string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, token, payload, body != nil, out)
		var me *matrixError
		if errors.As(err, &me) && me.Status == http.StatusTooManyRequests && attempt < 20 {
			c.rateLimited.Add(1)
			wait := time.Duration(max(me.RetryAfterMS, 50)) * time.Millisecond
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
}

func (c *client) once(ctx context.Context, method, path, token string, payload []byte, hasBody bool, out any) error {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		me := &matrixError{Status: res.StatusCode, raw: raw}
		_ = json.Unmarshal(raw, me)
		return me
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// user is one account the tool registered, with one device.
type user struct {
	ID     string `json:"user_id"`
	Token  string `json:"access_token"`
	Device string `json:"device_id"`
	// filter is the id of the sync filter the tool uploaded for this user.
	filter string
	txn    atomic.Int64
}

// nextTxn is a transaction id unique for this device.
func (u *user) nextTxn() string { return "pb" + strconv.FormatInt(u.txn.Add(1), 36) }

func roomPath(roomID string, rest string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + rest
}

// createRoom creates a public room (anyone may join, so members need no
// invite) and returns its id.
func (c *client) createRoom(ctx context.Context, u *user, name string) (string, error) {
	var out struct {
		RoomID string `json:"room_id"`
	}
	body := map[string]any{"preset": "public_chat", "name": name}
	if err := c.do(ctx, http.MethodPost, "/_matrix/client/v3/createRoom", u.Token, body, &out); err != nil {
		return "", fmt.Errorf("createRoom: %w", err)
	}
	return out.RoomID, nil
}

// join joins u to roomID.
func (c *client) join(ctx context.Context, u *user, roomID string) error {
	if err := c.do(ctx, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), u.Token, map[string]any{}, nil); err != nil {
		return fmt.Errorf("join %s: %w", roomID, err)
	}
	return nil
}

// Custom content keys of the tool's messages (namespaced, as the spec
// asks of custom keys): the sequence number and the send's start time in
// nanoseconds since the run began, so that a receiver in this process can
// compute the latency without a lookup table.
const (
	seqKey  = "im.parley.bench.seq"
	sentKey = "im.parley.bench.t"
)

// sender sends one request as a user: over HTTP, or as request frames
// over a WebSocket connection.
type sender interface {
	do(ctx context.Context, method, path string, body, out any) error
}

// httpSender is a user's requests over HTTP.
type httpSender struct {
	c *client
	u *user
}

func (h httpSender) do(ctx context.Context, method, path string, body, out any) error {
	return h.c.do(ctx, method, path, h.u.Token, body, out)
}

// send sends one m.text message carrying seq and the start time, and
// returns its event id.
func (c *client) send(ctx context.Context, u *user, roomID string, seq int64, sentNS int64) (string, error) {
	return sendOver(ctx, httpSender{c, u}, u, roomID, seq, sentNS)
}

func sendOver(ctx context.Context, s sender, u *user, roomID string, seq int64, sentNS int64) (string, error) {
	body := map[string]any{
		"msgtype": "m.text",
		"body":    "parley-bench " + strconv.FormatInt(seq, 10),
		seqKey:    seq,
		sentKey:   sentNS,
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	path := roomPath(roomID, "/send/m.room.message/"+u.nextTxn())
	if err := s.do(ctx, http.MethodPut, path, body, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

// syncFilter is the filter every sync of the tool uses: timelines only,
// no presence or ephemeral events, and a timeline limit above what one
// batch can hold in these scenarios. lazyMembers sets lazy_load_members,
// as clients such as Element do (then the first sync in a 500-member room
// does not carry 500 member events, but every incremental sync must carry
// the member event of each new sender the client has not seen).
func syncFilter(lazyMembers bool) map[string]any {
	return map[string]any{
		"presence":     map[string]any{"types": []string{}},
		"account_data": map[string]any{"types": []string{}},
		"room": map[string]any{
			"timeline":     map[string]any{"limit": 100},
			"state":        map[string]any{"lazy_load_members": lazyMembers},
			"ephemeral":    map[string]any{"types": []string{}},
			"account_data": map[string]any{"types": []string{}},
		},
	}
}

// uploadFilter stores filter for u (POST /user/{userId}/filter) as the
// filter of its syncs.
func (c *client) uploadFilter(ctx context.Context, u *user, filter map[string]any) error {
	var out struct {
		FilterID string `json:"filter_id"`
	}
	path := "/_matrix/client/v3/user/" + url.PathEscape(u.ID) + "/filter"
	if err := c.do(ctx, http.MethodPost, path, u.Token, filter, &out); err != nil {
		return fmt.Errorf("upload filter: %w", err)
	}
	u.filter = out.FilterID
	return nil
}
