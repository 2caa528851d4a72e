package clientapi

import (
	"context"

	"github.com/parleyhq/parley/rooms"
)

// withoutIgnored leaves out the message events of users the viewer ignores
// (m.ignored_user_list, spec "Ignoring Users"), as /sync does. State events
// stay, so that a client's view of the room's state remains correct.
func (a *API) withoutIgnored(ctx context.Context, v rooms.Viewer, evs []*rooms.StoredEvent) ([]*rooms.StoredEvent, error) {
	if a.AccountData == nil || len(evs) == 0 {
		return evs, nil
	}
	ignored, err := a.AccountData.Ignored(ctx, v.User)
	if err != nil || len(ignored) == 0 {
		return evs, err
	}
	kept := evs[:0:0]
	for _, se := range evs {
		if ignored[se.Event.Sender()] && !se.Event.IsState() {
			continue
		}
		kept = append(kept, se)
	}
	return kept, nil
}
