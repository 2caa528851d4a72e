package profiles

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// RemoteProfiles asks a user's own server for their profile (server-server
// API, GET /_matrix/federation/v1/query/profile); package federation
// implements it.
type RemoteProfiles interface {
	// QueryProfile returns user's whole profile; ErrUnknownUser when their
	// server says there is none.
	QueryProfile(ctx context.Context, user id.UserID) (Profile, error)
}

// SetRemote lets GET /profile/{userId} answer for users of other servers;
// local is this server's name. App calls it once, before serving.
func (s *Service) SetRemote(local id.ServerName, r RemoteProfiles) {
	s.local, s.remote = local, r
}

// isRemote reports whether user belongs to another server that can be
// asked.
func (s *Service) isRemote(user id.UserID) bool {
	return s.remote != nil && user.Server() != s.local
}

// errRemoteUnavailable: the user's server did not answer usefully.
var errRemoteUnavailable = mxerr.Unknown.WithStatus(http.StatusBadGateway).Msg("the user's server could not be reached")

func (s *Service) remoteProfile(ctx context.Context, user id.UserID) (Profile, error) {
	p, err := s.remote.QueryProfile(ctx, user)
	if errors.Is(err, ErrUnknownUser) {
		return nil, errNoProfile
	}
	if err != nil {
		s.logger.WarnContext(ctx, "remote profile query failed", slog.String("user_id", string(user)), slog.String("error", err.Error()))
		return nil, errRemoteUnavailable
	}
	if p == nil {
		p = Profile{}
	}
	return p, nil
}

// LocalProfile returns the profile of one of this server's users for
// another server (GET /_matrix/federation/v1/query/profile), the whole
// profile or, with field set, that field alone. M_NOT_FOUND for an
// unknown user or field; M_INVALID_PARAM for a user of another server.
func (s *Service) LocalProfile(ctx context.Context, user id.UserID, field string) (Profile, error) {
	if s.local != "" && user.Server() != s.local {
		return nil, mxerr.InvalidParam.Msg("the user is not on this server")
	}
	p, err := s.store.Profile(ctx, user)
	if errors.Is(err, ErrUnknownUser) {
		return nil, errNoProfile
	}
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = Profile{}
	}
	if field == "" {
		return p, nil
	}
	v, ok := p[field]
	if !ok {
		return nil, mxerr.NotFound.Msgf("The user has no %s", field)
	}
	return Profile{field: v}, nil
}
