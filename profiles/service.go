package profiles

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Config is the service's configuration.
type Config struct {
	// SearchAllUsers makes the user directory search every local user,
	// not only those the searcher shares a room with or who are in public
	// rooms (config user_directory.search_all_users).
	SearchAllUsers bool
}

// Service is the profile domain.
type Service struct {
	cfg     Config
	store   Store
	dir     DirectoryStore
	members MemberUpdater
	logger  *slog.Logger
	// remote asks other servers for their users' profiles (remote.go);
	// nil until SetRemote, local is this server's name.
	remote RemoteProfiles
	local  id.ServerName
}

// New returns the service. Until SetMemberUpdater, profile changes reach
// no room.
func New(cfg Config, store Store, dir DirectoryStore, logger *slog.Logger) *Service {
	return &Service{cfg: cfg, store: store, dir: dir, logger: logger}
}

// SetMemberUpdater sets the rooms side that re-sends membership events
// after a display name or avatar change; app calls it once, before
// serving (the rooms service also reads profiles, so one of the two is
// built first).
func (s *Service) SetMemberUpdater(m MemberUpdater) { s.members = m }

// errNoProfile is the answer for an unknown user (spec: getUserProfile,
// 404 "There is no profile information for this user or this user does
// not exist"). Remote profiles need federation and are not found either.
var errNoProfile = mxerr.NotFound.Msg("Profile not found")

// Profile returns the whole profile (GET /profile/{userId}).
func (s *Service) Profile(ctx context.Context, user id.UserID) (Profile, error) {
	p, err := s.store.Profile(ctx, user)
	if errors.Is(err, ErrUnknownUser) {
		if s.isRemote(user) {
			return s.remoteProfile(ctx, user)
		}
		return nil, errNoProfile
	}
	if err != nil {
		return nil, fmt.Errorf("load profile %s: %w", user, err)
	}
	if p == nil {
		p = Profile{}
	}
	return p, nil
}

// Field returns one field (GET /profile/{userId}/{keyName}); M_NOT_FOUND
// when the user or the field does not exist.
func (s *Service) Field(ctx context.Context, user id.UserID, key string) (json.RawMessage, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	p, err := s.Profile(ctx, user)
	if err != nil {
		return nil, err
	}
	v, ok := p[key]
	if !ok {
		return nil, mxerr.NotFound.Msgf("The user has no %s", key)
	}
	return v, nil
}

// MemberProfile is the display name and avatar that the user's membership
// events carry ("" when unset or when the user is not local); the rooms
// service reads it for every join, invite and knock of a local user.
func (s *Service) MemberProfile(ctx context.Context, user id.UserID) (displayName, avatarURL string, err error) {
	p, err := s.store.Profile(ctx, user)
	if errors.Is(err, ErrUnknownUser) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("load profile %s: %w", user, err)
	}
	return p.String(KeyDisplayName), p.String(KeyAvatarURL), nil
}

// SetField sets one field (PUT /profile/{userId}/{keyName}); only the
// user may change their own profile. A new display name or avatar is
// propagated to the membership event of every room the user is joined to
// (spec: "Events on Change of Profile Information").
func (s *Service) SetField(ctx context.Context, requester, user id.UserID, key string, value json.RawMessage) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	clear, err := checkValue(key, value)
	if err != nil {
		return err
	}
	return s.change(ctx, requester, user, key, func(p Profile) {
		if clear {
			delete(p, key)
		} else {
			p[key] = compact(value)
		}
	})
}

// DeleteField removes one field (DELETE /profile/{userId}/{keyName});
// removing a field that does not exist succeeds.
func (s *Service) DeleteField(ctx context.Context, requester, user id.UserID, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return s.change(ctx, requester, user, key, func(p Profile) { delete(p, key) })
}

// change applies edit to the user's profile under the store's row lock,
// enforces the size limit, and propagates a changed display name or
// avatar.
func (s *Service) change(ctx context.Context, requester, user id.UserID, key string, edit func(Profile)) error {
	if requester != user {
		return mxerr.Forbidden.Msg("You may only change your own profile")
	}
	changed := false
	err := s.store.UpdateProfile(ctx, user, func(cur Profile) (Profile, error) {
		next := maps.Clone(cur)
		if next == nil {
			next = Profile{}
		}
		edit(next)
		if next.size() >= MaxProfileBytes {
			return nil, mxerr.ProfileTooLarge
		}
		old, hadOld := cur[key]
		val, hasNew := next[key]
		changed = hadOld != hasNew || !bytes.Equal(old, val)
		return next, nil
	})
	if errors.Is(err, ErrUnknownUser) {
		return errNoProfile
	}
	if err != nil {
		return err
	}
	if changed && (key == KeyDisplayName || key == KeyAvatarURL) && s.members != nil {
		if err := s.members.RefreshMemberProfile(ctx, user); err != nil {
			// The profile is stored; a room that refuses the new member
			// event keeps the old one.
			s.logger.WarnContext(ctx, "profile change not propagated to every room",
				slog.String("user_id", string(user)), slog.String("error", err.Error()))
		}
	}
	return nil
}

func compact(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
