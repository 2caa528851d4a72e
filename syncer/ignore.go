package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// IgnoreList reads the users a user ignores (their m.ignored_user_list
// account data; the accountdata package serves it).
type IgnoreList interface {
	Ignored(ctx context.Context, user id.UserID) (map[id.UserID]bool, error)
}

// SetIgnoreList makes /sync apply users' ignore lists (spec
// client-server-api "Ignoring Users"): timeline events and invites from
// ignored users are left out. Call it while wiring.
func (s *Service) SetIgnoreList(l IgnoreList) { s.ignore = &ignoreCache{list: l} }

// loadIgnored reads the syncing user's ignore list once per response.
func (b *builder) loadIgnored(ctx context.Context) error {
	if b.s.ignore == nil {
		return nil
	}
	if c, ok := b.s.ignore.(*ignoreCache); ok && b.s.serves(StreamAccountData) {
		ignored, err := c.at(ctx, b.req.User, b.at.Pos(StreamAccountData))
		b.ignored = ignored
		return err
	}
	ignored, err := b.s.ignore.Ignored(ctx, b.req.User)
	if err != nil {
		return err
	}
	b.ignored = ignored
	return nil
}

// serves reports whether a source serves st.
func (s *Service) serves(st Stream) bool {
	for _, src := range s.sources {
		if src.Stream() == st {
			return true
		}
	}
	return false
}

// dropIgnored leaves out the timeline's message-like events of ignored
// senders. State events stay: without them the client's view of the room
// state would be wrong (the spec's "events" of ignored users are the
// messages a client shows).
func (b *builder) dropIgnored(tl []*rooms.StoredEvent) []*rooms.StoredEvent {
	if len(b.ignored) == 0 {
		return tl
	}
	out := tl[:0:0]
	for _, se := range tl {
		if !se.Event.IsState() && b.ignored[se.Event.Sender()] {
			continue
		}
		out = append(out, se)
	}
	return out
}

// invitedByIgnored reports whether the user's invite to the room came from
// someone they ignore: such invites are not shown.
func (b *builder) invitedByIgnored(ctx context.Context, p roomPlan) (bool, error) {
	if len(b.ignored) == 0 {
		return false, nil
	}
	st, err := b.s.store.StateBefore(ctx, p.room, p.membership.Seq+1)
	if err != nil {
		return false, err
	}
	ev := st.Get(auth.TypeMember, string(b.req.User))
	return ev != nil && b.ignored[ev.Sender()], nil
}
