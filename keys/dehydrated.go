package keys

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// Dehydrated devices (MSC3814; not in the v1.19 spec): a device a client
// leaves on the server, its private keys encrypted in device_data, so that
// to-device messages sent while the user has no device online wait for
// the next device, which rehydrates it and reads them.

// ErrDeviceExists is returned by the store when a dehydrated device would
// take the id of a device the user has.
var ErrDeviceExists = errors.New("keys: the device id is taken")

// DehydratedStore keeps each user's dehydrated device.
type DehydratedStore interface {
	// PutDehydratedDevice creates device as user's dehydrated device (a
	// device row without tokens) with its data, deleting the previous one;
	// ErrDeviceExists when a device of that id exists and is not the
	// dehydrated one. It returns the replaced device's id ("" none).
	PutDehydratedDevice(ctx context.Context, user id.UserID, device id.DeviceID, displayName string, data json.RawMessage) (id.DeviceID, error)
	// DehydratedDevice returns user's dehydrated device; ErrNotFound.
	DehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, json.RawMessage, error)
	// DeleteDehydratedDevice deletes it and returns its id; ErrNotFound.
	DeleteDehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, error)
}

// DehydratedDeviceUpload is the body of PUT /dehydrated_device.
type DehydratedDeviceUpload struct {
	DeviceID    id.DeviceID     `json:"device_id"`
	DisplayName string          `json:"initial_device_display_name"`
	DeviceData  json.RawMessage `json:"device_data"`
	UploadRequest
}

var errNoDehydrated = mxerr.NotFound.Msg("No dehydrated device")

// PutDehydratedDevice handles PUT /unstable/org.matrix.msc3814.v1/dehydrated_device:
// the device and its keys (checked as an upload by that device would be)
// replace the user's previous dehydrated device.
func (s *Service) PutDehydratedDevice(ctx context.Context, user id.UserID, req DehydratedDeviceUpload) (id.DeviceID, error) {
	if req.DeviceID == "" || len(req.DeviceID) > 255 {
		return "", mxerr.InvalidParam.Msg("device_id is required")
	}
	if len(req.DeviceData) == 0 || req.DeviceData[0] != '{' {
		return "", mxerr.BadJSON.Msg("device_data must be an object")
	}
	if len(req.DeviceKeys) == 0 {
		return "", mxerr.MissingParam.Msg("device_keys is required")
	}
	// Check everything before the device exists: a refused upload leaves
	// the previous dehydrated device in place.
	if _, _, err := checkDeviceKeys(req.DeviceKeys, user, req.DeviceID); err != nil {
		return "", err
	}
	if err := s.checkNotCrossSigningID(ctx, user, req.DeviceID); err != nil {
		return "", err
	}
	data, err := canonicaljson.ParseLenient(req.DeviceData)
	if err != nil {
		return "", mxerr.BadJSON.Msg("device_data must be an object")
	}
	old, err := s.store.PutDehydratedDevice(ctx, user, req.DeviceID, req.DisplayName, canonicaljson.Encode(data))
	if errors.Is(err, ErrDeviceExists) {
		return "", mxerr.InvalidParam.Msg("device_id is the id of an existing device")
	}
	if err != nil {
		return "", err
	}
	if old != "" {
		s.DevicesDeleted(ctx, user, []id.DeviceID{old})
	}
	if _, err := s.Upload(ctx, user, req.DeviceID, req.UploadRequest); err != nil {
		// Keys that pass the checks above fail here only on one-time key
		// contents: the half-made device goes again.
		if _, derr := s.store.DeleteDehydratedDevice(ctx, user); derr == nil {
			s.DevicesDeleted(ctx, user, []id.DeviceID{req.DeviceID})
		}
		return "", err
	}
	return req.DeviceID, nil
}

// DehydratedDevice handles GET /unstable/org.matrix.msc3814.v1/dehydrated_device.
func (s *Service) DehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, json.RawMessage, error) {
	d, data, err := s.store.DehydratedDevice(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return "", nil, errNoDehydrated
	}
	return d, data, err
}

// DeleteDehydratedDevice handles DELETE /unstable/org.matrix.msc3814.v1/dehydrated_device.
func (s *Service) DeleteDehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, error) {
	d, err := s.store.DeleteDehydratedDevice(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return "", errNoDehydrated
	}
	if err != nil {
		return "", err
	}
	s.DevicesDeleted(ctx, user, []id.DeviceID{d})
	return d, nil
}

// DehydratedEvents handles POST /unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events:
// the dehydrated device's to-device messages after nextBatch (which
// acknowledges those up to it), a page at a time; an empty page is the end.
func (s *Service) DehydratedEvents(ctx context.Context, user id.UserID, device id.DeviceID, nextBatch string) ([]json.RawMessage, string, error) {
	d, _, err := s.store.DehydratedDevice(ctx, user)
	if errors.Is(err, ErrNotFound) || (err == nil && d != device) {
		return nil, "", mxerr.Forbidden.Msg("Not the user's dehydrated device")
	}
	if err != nil {
		return nil, "", err
	}
	var since int64
	if nextBatch != "" {
		if since, err = strconv.ParseInt(nextBatch, 10, 64); err != nil || since < 0 {
			return nil, "", mxerr.InvalidParam.Msg("next_batch is not a token of this endpoint")
		}
	}
	upTo, err := s.store.ToDevicePos(ctx)
	if err != nil {
		return nil, "", err
	}
	msgs, err := s.store.TakeToDevice(ctx, user, device, since, upTo, toDeviceLimit)
	if err != nil {
		return nil, "", err
	}
	events := make([]json.RawMessage, 0, len(msgs))
	next := since
	for _, m := range msgs {
		events = append(events, m.Message)
		next = m.Pos
	}
	return events, strconv.FormatInt(next, 10), nil
}
