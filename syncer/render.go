package syncer

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// syncEvent is a ClientEvent without room_id, as /sync nests events under
// their room (ClientEventWithoutRoomID): the shallower empty field hides
// the embedded one.
type syncEvent struct {
	rooms.ClientEvent
	RoomID id.RoomID `json:"room_id,omitempty"`
}

// render formats events for the user's device in the filter's
// event_format, with its event_fields applied.
func (b *builder) render(evs []*rooms.StoredEvent) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(evs))
	viewer := rooms.Viewer{User: b.req.User, Device: b.req.Device}
	var fields []string
	federation := false
	if b.filter != nil {
		fields = b.filter.EventFields
		federation = b.filter.EventFormat == "federation"
	}
	for _, se := range evs {
		var raw json.RawMessage
		var err error
		if federation {
			// event_format "federation": the event as it travels between
			// servers (in its redacted form when a redaction applies).
			raw = se.Event.Raw()
		} else {
			raw, err = b.s.rendered.clientEvent(b.s.format, se, viewer)
		}
		if err == nil {
			raw, err = ProjectFields(raw, fields)
		}
		if err != nil {
			// Only a programming error gets here; skip rather than fail
			// the whole sync.
			b.s.logger.Error("render event for sync", "event_id", string(se.Event.EventID()), "error", err.Error())
			continue
		}
		out = append(out, raw)
	}
	return out
}
