package users

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// OpCrossSigning is the operation of POST /keys/device_signing/upload.
const OpCrossSigning = "keys.device_signing"

// AuthorizeCrossSigning runs one round of user-interactive auth for a
// cross-signing key upload (spec: POST /keys/device_signing/upload) by
// user's device; auth is the request's "auth" object (nil when absent).
// It returns finish, to call once the upload succeeded, or a *UIARequired
// while auth is incomplete. The keys service decides when auth is needed
// at all (not for the first upload).
func (s *Service) AuthorizeCrossSigning(ctx context.Context, user id.UserID, device id.DeviceID, auth json.RawMessage) (func(context.Context) error, error) {
	var data *AuthData
	if len(auth) > 0 && string(auth) != "null" {
		data = &AuthData{}
		if err := json.Unmarshal(auth, data); err != nil {
			return nil, mxerr.BadJSON.Msg("auth must be an authentication data object")
		}
	}
	r := Requester{UserID: user, DeviceID: device}
	done, err := s.checkUIA(ctx, OpCrossSigning, &r, data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.finishUIA(ctx, done) }, nil
}
