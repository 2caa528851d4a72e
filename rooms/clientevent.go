package rooms

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// ClientEvent is an event in the client-server API's format
// (client-server API, "Room event format" / ClientEvent).
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        id.EventID      `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         id.RoomID       `json:"room_id"`
	Sender         id.UserID       `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	// Redacts is kept at the top level in every room version too, as the
	// spec's ClientEvent of m.room.redaction still documents it there for
	// older clients.
	Redacts  id.EventID `json:"redacts,omitempty"`
	Unsigned *Unsigned  `json:"unsigned,omitempty"`
}

// Unsigned is the unsigned data a server adds for clients.
type Unsigned struct {
	Age             *int64          `json:"age,omitempty"`
	TransactionID   string          `json:"transaction_id,omitempty"`
	PrevContent     json.RawMessage `json:"prev_content,omitempty"`
	RedactedBecause *ClientEvent    `json:"redacted_because,omitempty"`
	// Membership is the requesting user's membership at the event
	// (MSC4115, in the spec since v1.11).
	Membership string `json:"membership,omitempty"`
}

// Viewer is who reads an event: unsigned.transaction_id goes only to the
// device that sent it.
type Viewer struct {
	User   id.UserID
	Device id.DeviceID
}

// ClientEvent renders se for viewer. Events already carry their redacted
// form when a redaction applies; unsigned.redacted_because names it.
func (s *Service) ClientEvent(se *StoredEvent, viewer Viewer) ClientEvent {
	ev := se.Event
	now := s.nowMS()
	age := max(now-ev.OriginServerTS(), 0)
	ce := ClientEvent{
		Content:        ev.Content(),
		EventID:        ev.EventID(),
		OriginServerTS: ev.OriginServerTS(),
		RoomID:         se.RoomID,
		Sender:         ev.Sender(),
		StateKey:       ev.StateKey(),
		Type:           ev.Type(),
		Redacts:        ev.Redacts(),
		Unsigned:       &Unsigned{Age: &age},
	}
	if len(se.PrevContent) > 0 {
		ce.Unsigned.PrevContent = se.PrevContent
	}
	if se.TxnID != "" && viewer.User == ev.Sender() && viewer.Device == se.TxnDevice {
		ce.Unsigned.TransactionID = se.TxnID
	}
	if se.Redaction != nil {
		r := se.Redaction
		rage := max(now-r.OriginServerTS(), 0)
		ce.Unsigned.RedactedBecause = &ClientEvent{
			Content: r.Content(), EventID: r.EventID(), OriginServerTS: r.OriginServerTS(),
			RoomID: se.RoomID, Sender: r.Sender(), Type: r.Type(), Redacts: r.Redacts(),
			Unsigned: &Unsigned{Age: &rage},
		}
		if ce.Unsigned.RedactedBecause.Redacts == "" {
			ce.Unsigned.RedactedBecause.Redacts = ev.EventID()
		}
	}
	return ce
}

// ClientEvents renders a list.
func (s *Service) ClientEvents(ses []*StoredEvent, viewer Viewer) []ClientEvent {
	out := make([]ClientEvent, len(ses))
	for i, se := range ses {
		out[i] = s.ClientEvent(se, viewer)
	}
	return out
}
