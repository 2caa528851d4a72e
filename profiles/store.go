package profiles

import (
	"context"

	"github.com/parleyhq/parley/id"
)

// Store persists profiles.
type Store interface {
	// Profile returns the user's profile; ErrUnknownUser when no local
	// account has that id.
	Profile(ctx context.Context, user id.UserID) (Profile, error)
	// UpdateProfile replaces the user's profile by what update returns
	// from the current one, in one transaction that holds the profile's
	// row lock, so that concurrent changes of different fields do not
	// lose each other and the size limit holds. ErrUnknownUser when no
	// local account has that id; update's error is returned unchanged.
	UpdateProfile(ctx context.Context, user id.UserID, update func(Profile) (Profile, error)) error
}

// DirectoryStore answers user directory searches.
type DirectoryStore interface {
	// SearchUsers returns up to limit local, not deactivated users whose
	// user id or display name has a word starting with each of words (lower
	// case). Unless all, only users who share a joined room with searcher,
	// or are joined to a public room (public join rule, world-readable
	// history or listed in the room directory), are considered.
	SearchUsers(ctx context.Context, searcher id.UserID, words []string, all bool, limit int) ([]DirectoryEntry, error)
}

// MemberUpdater refreshes the user's m.room.member events after the display
// name or avatar changed; the rooms service implements it.
type MemberUpdater interface {
	RefreshMemberProfile(ctx context.Context, user id.UserID) error
}
