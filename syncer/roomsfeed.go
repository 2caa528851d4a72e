package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

var _ rooms.Notifier = (*Notifier)(nil)

// OnNewEvent implements rooms.Notifier: a committed room event wakes the
// syncs of the room's members and, for a membership event, the syncs of
// its target (an invite or a join reaches a user not yet in the room).
func (n *Notifier) OnNewEvent(_ context.Context, ev rooms.NewEvent) {
	c := Change{Stream: StreamTimeline, Pos: ev.StreamPos, Room: ev.RoomID}
	if ev.Type == auth.TypeMember && ev.StateKey != nil {
		c.Users = []id.UserID{id.UserID(*ev.StateKey)}
	}
	n.Notify(c)
}
