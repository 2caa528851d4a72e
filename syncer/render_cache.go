package syncer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// renderCache keeps, per event, the parts of its client-format JSON that
// are the same for every viewer (issue #9: a message to 500 members was
// encoded 500 times, identical but for unsigned.age and the sender's
// unsigned.transaction_id). A viewer's rendering splices its own age and
// transaction id between them. Events that carry a redaction (its age is
// per viewer too) or any other unsigned field are rendered whole, as
// before.
//
// An entry never goes stale: the parts depend only on the event, which a
// stored event id names for good, and on prev_content, which the entry
// keeps and compares (a read that does not fill it renders without it).
// A redaction applied later makes the stored event carry it, and that
// bypasses the cache.
type renderCache struct {
	mu sync.Mutex
	m  map[id.EventID]renderedParts
}

// renderedParts: head is the event without "unsigned", closing brace
// included; rest the unsigned fields after age and transaction_id
// (`"prev_content":…`), empty when none; prev the prev_content it was
// rendered with.
type renderedParts struct {
	head, rest, prev []byte
}

// maxRenderedEvents bounds the cache; when full it starts again empty.
// The events of one fan-out are a handful.
const maxRenderedEvents = 4096

// clientEvent renders se for viewer as json.Marshal(syncEvent{…}) would.
func (c *renderCache) clientEvent(format Formatter, se *rooms.StoredEvent, viewer rooms.Viewer) (json.RawMessage, error) {
	ce := format.ClientEvent(se, viewer)
	u := ce.Unsigned
	if se.Redaction != nil || u == nil || u.Age == nil || u.RedactedBecause != nil || u.Membership != "" {
		return json.Marshal(syncEvent{ClientEvent: ce})
	}
	p, ok := c.get(ce.EventID, u.PrevContent)
	if !ok {
		var err error
		if p, err = partsOf(ce); err != nil {
			return nil, err
		}
		c.put(ce.EventID, p)
	}
	out := make([]byte, 0, len(p.head)+len(p.rest)+len(u.TransactionID)+48)
	out = append(out, p.head[:len(p.head)-1]...)
	out = append(out, `,"unsigned":{"age":`...)
	out = strconv.AppendInt(out, *u.Age, 10)
	if u.TransactionID != "" {
		a := jsonAppender{b: append(out, `,"transaction_id":`...)}
		a.str(u.TransactionID)
		out = a.b
	}
	if len(p.rest) > 0 {
		out = append(out, ',')
		out = append(out, p.rest...)
	}
	return append(out, "}}"...), nil
}

// partsOf renders the viewer-independent parts of ce.
func partsOf(ce rooms.ClientEvent) (renderedParts, error) {
	prev := ce.Unsigned.PrevContent
	ce.Unsigned = nil
	head, err := json.Marshal(syncEvent{ClientEvent: ce})
	if err != nil {
		return renderedParts{}, err
	}
	rest, err := json.Marshal(rooms.Unsigned{PrevContent: prev})
	if err != nil {
		return renderedParts{}, err
	}
	return renderedParts{head: head, rest: rest[1 : len(rest)-1], prev: prev}, nil
}

func (c *renderCache) get(ev id.EventID, prev []byte) (renderedParts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[ev]
	return p, ok && bytes.Equal(p.prev, prev)
}

func (c *renderCache) put(ev id.EventID, p renderedParts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxRenderedEvents {
		c.m = map[id.EventID]renderedParts{}
	}
	c.m[ev] = p
}
