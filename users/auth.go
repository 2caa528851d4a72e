package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Authenticate resolves an access token to its requester and records the
// device's activity (coalesced, see lastSeen). Unknown, revoked and
// deactivated-account tokens give M_UNKNOWN_TOKEN; an expired token gives
// M_UNKNOWN_TOKEN with soft_logout: true (spec: "Soft logout") so that the
// client refreshes instead of discarding its state.
func (s *Service) Authenticate(ctx context.Context, token, ip string) (Requester, error) {
	if token == "" {
		return Requester{}, mxerr.MissingToken
	}
	h := HashToken(token)
	now := s.now()
	info, ok := s.cache.get(h, now)
	if !ok {
		var err error
		info, err = s.st.Tokens.AccessToken(ctx, h)
		if errors.Is(err, ErrNotFound) {
			return Requester{}, mxerr.UnknownToken.Msg("Unknown access token")
		}
		if err != nil {
			return Requester{}, fmt.Errorf("look up access token: %w", err)
		}
		s.cache.put(h, info, now)
	}
	if !info.ExpiresAt.IsZero() && !now.Before(info.ExpiresAt) {
		return Requester{}, mxerr.UnknownToken.Msg("Access token has expired").With("soft_logout", true)
	}
	if !info.Used {
		// First use of a refreshed token: the refresh token it replaced is
		// revoked now (spec: "Refreshing access tokens").
		if err := s.st.Tokens.MarkAccessTokenUsed(ctx, h); err != nil {
			return Requester{}, fmt.Errorf("mark access token used: %w", err)
		}
		info.Used = true
		s.cache.put(h, info, now)
	}
	s.seen.record(info.UserID, info.DeviceID, ip, now)
	return Requester{UserID: info.UserID, DeviceID: info.DeviceID, IsGuest: info.IsGuest, IsAdmin: info.IsAdmin, ExpiresAt: info.ExpiresAt}, nil
}

// Logout handles POST /logout: the device of the token goes, and with it
// every token bound to it (spec: the device is deleted with the token).
func (s *Service) Logout(ctx context.Context, r Requester) error {
	if err := s.st.Devices.DeleteDevices(ctx, r.UserID, []id.DeviceID{r.DeviceID}); err != nil {
		return err
	}
	s.cache.invalidate(r.UserID, r.DeviceID)
	return nil
}

// LogoutAll handles POST /logout/all: every device of the user goes.
func (s *Service) LogoutAll(ctx context.Context, user id.UserID) error {
	if _, err := s.st.Devices.DeleteDevicesExcept(ctx, user, ""); err != nil {
		return err
	}
	s.cache.invalidate(user)
	return nil
}

// Refresh rotates a refresh token: a new access token (expiring) and a new
// refresh token for the same device. The old refresh token keeps working
// until the new pair is used (storage revokes it then).
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" {
		return Session{}, mxerr.UnknownToken.Msg("Unknown refresh token")
	}
	now := s.now()
	access, refresh := newToken(prefixAccess), newToken(prefixRefresh)
	expires := now.Add(s.cfg.AccessTokenLifetime)
	user, device, err := s.st.Tokens.RotateRefreshToken(ctx, HashToken(refreshToken), HashToken(access), HashToken(refresh), expires, now)
	if errors.Is(err, ErrNotFound) {
		return Session{}, mxerr.UnknownToken.Msg("Unknown refresh token")
	}
	if err != nil {
		return Session{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	s.cache.invalidate(user, device)
	return Session{UserID: user, DeviceID: device, AccessToken: access, RefreshToken: refresh, ExpiresIn: s.cfg.AccessTokenLifetime}, nil
}

// newSession draws the tokens of a login on device and returns both what to
// persist and what to hand the client.
func (s *Service) newSession(user id.UserID, device id.DeviceID, displayName string, withRefresh bool) (NewSession, Session) {
	now := s.now()
	access := newToken(prefixAccess)
	ns := NewSession{UserID: user, DeviceID: device, DisplayName: displayName, AccessHash: HashToken(access), CreatedAt: now}
	out := Session{UserID: user, DeviceID: device, AccessToken: access}
	if withRefresh {
		refresh := newToken(prefixRefresh)
		rh := HashToken(refresh)
		ns.RefreshHash = &rh
		ns.ExpiresAt = now.Add(s.cfg.AccessTokenLifetime)
		out.RefreshToken = refresh
		out.ExpiresIn = s.cfg.AccessTokenLifetime
	}
	return ns, out
}
