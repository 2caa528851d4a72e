package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// ChangePassword handles POST /account/password (UIA m.login.password with
// the requester's current password). With logoutDevices (the spec's
// default) every other device of the user is deleted with its tokens.
func (s *Service) ChangePassword(ctx context.Context, r Requester, auth *AuthData, newPassword string, logoutDevices bool) error {
	if r.IsGuest {
		return mxerr.GuestAccessForbidden
	}
	if s.cfg.PasswordDisabled {
		return errPasswordsOff
	}
	if newPassword == "" {
		return mxerr.MissingParam.Msg("Missing new_password")
	}
	if len(newPassword) > maxPasswordBytes {
		return mxerr.InvalidParam.Msg("Password is too long")
	}
	done, err := s.checkUIA(ctx, OpPassword, &r, auth)
	if err != nil {
		return err
	}
	if err := s.setPassword(ctx, r.UserID, newPassword); err != nil {
		return err
	}
	if logoutDevices {
		deleted, err := s.st.Devices.DeleteDevicesExcept(ctx, r.UserID, r.DeviceID)
		if err != nil {
			return err
		}
		s.cache.invalidate(r.UserID, deleted...)
	}
	return s.finishUIA(ctx, done)
}

func (s *Service) setPassword(ctx context.Context, user id.UserID, password string) error {
	h, err := HashPassword(password, s.cfg.Password)
	if err != nil {
		return err
	}
	if err := s.st.Accounts.SetPasswordHash(ctx, user, h); err != nil {
		return fmt.Errorf("set password of %s: %w", user, err)
	}
	return nil
}

// Deactivate handles POST /account/deactivate: after UIA the account can no
// longer log in and its id is never registered again.
func (s *Service) Deactivate(ctx context.Context, r Requester, auth *AuthData) error {
	done, err := s.checkUIA(ctx, OpDeactivate, &r, auth)
	if err != nil {
		return err
	}
	if err := s.deactivate(ctx, r.UserID); err != nil {
		return err
	}
	return s.finishUIA(ctx, done)
}

func (s *Service) deactivate(ctx context.Context, user id.UserID) error {
	if err := s.st.Accounts.DeactivateAccount(ctx, user); err != nil {
		return fmt.Errorf("deactivate %s: %w", user, err)
	}
	s.cache.invalidate(user)
	return nil
}

// Devices handles GET /devices.
func (s *Service) Devices(ctx context.Context, user id.UserID) ([]Device, error) {
	return s.st.Devices.Devices(ctx, user)
}

// Device handles GET /devices/{deviceId}.
func (s *Service) Device(ctx context.Context, user id.UserID, device id.DeviceID) (Device, error) {
	d, err := s.st.Devices.Device(ctx, user, device)
	if errors.Is(err, ErrNotFound) {
		return Device{}, mxerr.NotFound.Msg("Unknown device")
	}
	return d, err
}

// RenameDevice handles PUT /devices/{deviceId}.
func (s *Service) RenameDevice(ctx context.Context, user id.UserID, device id.DeviceID, name string) error {
	err := s.st.Devices.SetDeviceName(ctx, user, device, name)
	if errors.Is(err, ErrNotFound) {
		return mxerr.NotFound.Msg("Unknown device")
	}
	return err
}

// DeleteDevices handles DELETE /devices/{deviceId} and POST
// /delete_devices, both behind UIA.
func (s *Service) DeleteDevices(ctx context.Context, r Requester, auth *AuthData, devices []id.DeviceID) error {
	done, err := s.checkUIA(ctx, OpDeleteDevices, &r, auth)
	if err != nil {
		return err
	}
	if err := s.st.Devices.DeleteDevices(ctx, r.UserID, devices); err != nil {
		return err
	}
	s.cache.invalidate(r.UserID, devices...)
	return s.finishUIA(ctx, done)
}
