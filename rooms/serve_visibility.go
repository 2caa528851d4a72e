package rooms

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// forServer returns evs as server may receive them: an event no user of
// server could see under the history visibility rules is replaced by its
// redacted form. Redacting rather than omitting keeps the graph the
// server walks connected (prev_events, depth, signatures stay valid) while
// the content stays private.
func (s *Service) forServer(ctx context.Context, server id.ServerName, room id.RoomID, evs []*event.Event) ([]*event.Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	views, err := s.store.ServerViews(ctx, room, server, eventIDs(evs))
	if err != nil {
		return nil, err
	}
	out := make([]*event.Event, len(evs))
	for i, ev := range evs {
		out[i] = ev
		if v, ok := views[ev.EventID()]; ok && !serverMaySee(v, ev, server) {
			out[i] = ev.Redacted()
		}
	}
	return out, nil
}

// serverMaySee applies the history visibility rules (client-server API,
// "History visibility", server behaviour) for a server: it may see an
// event when any of its users could. The server is in the room now (every
// serve path checks it first), so under "shared" one of its users has
// joined after the event: shared history is visible to it.
//
// As for users, a m.room.history_visibility event is visible when the
// visibility before or after it allows, and a member event of one of the
// server's users counts with the membership it sets as well as the one it
// replaces.
//
// Outliers (no state known) are served as they are: they are state and
// auth events the server receives with the room's state anyway.
func serverMaySee(v ServerView, ev *event.Event, server id.ServerName) bool {
	if !v.Known {
		return true
	}
	visibilities := []string{v.HistoryVisibility}
	if ev.Type() == typeHistoryVisibility && ev.StateKey() != nil && *ev.StateKey() == "" {
		var c struct {
			HV string `json:"history_visibility"`
		}
		if json.Unmarshal(ev.Content(), &c) == nil {
			visibilities = append(visibilities, c.HV)
		}
	}
	memberships := v.Memberships
	if ev.Type() == auth.TypeMember && ev.StateKey() != nil && id.UserID(*ev.StateKey()).Server() == server {
		memberships = append(memberships[:len(memberships):len(memberships)], ev.Membership())
	}
	joined, invited := false, false
	for _, m := range memberships {
		joined = joined || m == "join"
		invited = invited || m == "invite"
	}
	for _, hv := range visibilities {
		switch hv {
		case "joined":
			if joined {
				return true
			}
		case "invited":
			if joined || invited {
				return true
			}
		default:
			// world_readable, shared, and (spec) unset or not understood
			// values, which count as shared.
			return true
		}
	}
	return false
}
