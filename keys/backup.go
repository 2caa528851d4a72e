package keys

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// BackupInfo is the body of GET /room_keys/version[/{version}].
type BackupInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int64           `json:"count"`
	ETag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// KeyBackupData is one session's backed-up key (spec: KeyBackupData).
type KeyBackupData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// RoomKeyBackup is a room's sessions.
type RoomKeyBackup struct {
	Sessions map[string]KeyBackupData `json:"sessions"`
}

// BackupCounts is the answer of the key-changing endpoints.
type BackupCounts struct {
	ETag  string `json:"etag"`
	Count int64  `json:"count"`
}

var errNoBackup = mxerr.NotFound.Msg("No current backup version")

func errUnknownBackup(v string) error { return mxerr.NotFound.Msgf("Unknown backup version %s", v) }

// parseVersion reads a backup version id; anything else names no backup.
func parseVersion(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errUnknownBackup(v)
	}
	return n, nil
}

func info(b BackupVersion) *BackupInfo {
	return &BackupInfo{Algorithm: b.Algorithm, AuthData: b.AuthData, Count: b.Count,
		ETag: strconv.FormatInt(b.ETag, 10), Version: strconv.FormatInt(b.Version, 10)}
}

func checkAuthData(algorithm string, authData json.RawMessage) error {
	if algorithm == "" {
		return mxerr.MissingParam.Msg("Missing algorithm")
	}
	if len(authData) == 0 || authData[0] != '{' {
		return mxerr.BadJSON.Msg("auth_data must be an object")
	}
	return nil
}

// CreateBackup handles POST /room_keys/version: a new version, which
// becomes the current one.
func (s *Service) CreateBackup(ctx context.Context, user id.UserID, algorithm string, authData json.RawMessage) (string, error) {
	if err := checkAuthData(algorithm, authData); err != nil {
		return "", err
	}
	v, err := s.store.CreateBackup(ctx, user, algorithm, authData)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v, 10), nil
}

// Backup handles GET /room_keys/version[/{version}] ("" the current one).
func (s *Service) Backup(ctx context.Context, user id.UserID, version string) (*BackupInfo, error) {
	var n int64
	if version != "" {
		var err error
		if n, err = parseVersion(version); err != nil {
			return nil, err
		}
	}
	b, err := s.store.Backup(ctx, user, n)
	if errors.Is(err, ErrNotFound) {
		if version == "" {
			return nil, errNoBackup
		}
		return nil, errUnknownBackup(version)
	}
	if err != nil {
		return nil, err
	}
	return info(b), nil
}

// UpdateBackup handles PUT /room_keys/version/{version}: only auth_data
// changes; the algorithm and a version in the body must match.
func (s *Service) UpdateBackup(ctx context.Context, user id.UserID, version, algorithm, bodyVersion string, authData json.RawMessage) error {
	if err := checkAuthData(algorithm, authData); err != nil {
		return err
	}
	if bodyVersion != "" && bodyVersion != version {
		return mxerr.InvalidParam.Msg("version in the body does not match the path")
	}
	cur, err := s.Backup(ctx, user, version)
	if err != nil {
		return err
	}
	if cur.Algorithm != algorithm {
		return mxerr.InvalidParam.Msg("the algorithm of a backup version cannot change")
	}
	n, _ := parseVersion(version)
	return s.store.UpdateBackup(ctx, user, n, authData)
}

// DeleteBackup handles DELETE /room_keys/version/{version}: the version
// and its keys go.
func (s *Service) DeleteBackup(ctx context.Context, user id.UserID, version string) error {
	n, err := parseVersion(version)
	if err != nil {
		return err
	}
	err = s.store.DeleteBackup(ctx, user, n)
	if errors.Is(err, ErrNotFound) {
		return errUnknownBackup(version)
	}
	return err
}

// PutBackupKeys handles PUT /room_keys/keys[/{roomId}[/{sessionId}]]:
// keys go only to the current version (M_WRONG_ROOM_KEYS_VERSION with
// current_version otherwise), each kept only when better than the stored
// one.
func (s *Service) PutBackupKeys(ctx context.Context, user id.UserID, version string, rooms map[id.RoomID]RoomKeyBackup) (*BackupCounts, error) {
	n, err := s.currentVersion(ctx, user, version)
	if err != nil {
		return nil, err
	}
	var keys []BackupKey
	for room, rk := range rooms {
		if _, err := id.ParseRoomID(string(room)); err != nil {
			return nil, mxerr.InvalidParam.Msgf("%q is not a room id", room)
		}
		for session, d := range rk.Sessions {
			if d.FirstMessageIndex == nil || d.ForwardedCount == nil || d.IsVerified == nil || len(d.SessionData) == 0 || d.SessionData[0] != '{' {
				return nil, mxerr.BadJSON.Msgf("session %s: first_message_index, forwarded_count, is_verified and session_data are required", session)
			}
			keys = append(keys, BackupKey{Room: room, SessionID: session, FirstMessageIndex: *d.FirstMessageIndex,
				ForwardedCount: *d.ForwardedCount, IsVerified: *d.IsVerified, SessionData: d.SessionData})
		}
	}
	b, err := s.store.PutBackupKeys(ctx, user, n, keys)
	if err != nil {
		return nil, err
	}
	return &BackupCounts{ETag: strconv.FormatInt(b.ETag, 10), Count: b.Count}, nil
}

// currentVersion checks that version is the user's current backup.
func (s *Service) currentVersion(ctx context.Context, user id.UserID, version string) (int64, error) {
	cur, err := s.store.Backup(ctx, user, 0)
	if errors.Is(err, ErrNotFound) {
		return 0, errUnknownBackup(version)
	}
	if err != nil {
		return 0, err
	}
	if strconv.FormatInt(cur.Version, 10) != version {
		return 0, ErrWrongBackupVersion.Msg("Wrong backup version").With("current_version", strconv.FormatInt(cur.Version, 10))
	}
	return cur.Version, nil
}

// BackupKeys handles GET /room_keys/keys[/{roomId}[/{sessionId}]] of a
// version; room and session "" read the wider levels.
func (s *Service) BackupKeys(ctx context.Context, user id.UserID, version string, room id.RoomID, session string) (map[id.RoomID]RoomKeyBackup, error) {
	if _, err := s.Backup(ctx, user, version); err != nil {
		return nil, err
	}
	n, _ := parseVersion(version)
	keys, err := s.store.BackupKeys(ctx, user, n, room, session)
	if err != nil {
		return nil, err
	}
	out := map[id.RoomID]RoomKeyBackup{}
	for _, k := range keys {
		rk, ok := out[k.Room]
		if !ok {
			rk = RoomKeyBackup{Sessions: map[string]KeyBackupData{}}
			out[k.Room] = rk
		}
		fmi, fc, v := k.FirstMessageIndex, k.ForwardedCount, k.IsVerified
		rk.Sessions[k.SessionID] = KeyBackupData{FirstMessageIndex: &fmi, ForwardedCount: &fc, IsVerified: &v,
			SessionData: k.SessionData}
	}
	return out, nil
}

// DeleteBackupKeys handles DELETE /room_keys/keys[/{roomId}[/{sessionId}]].
func (s *Service) DeleteBackupKeys(ctx context.Context, user id.UserID, version string, room id.RoomID, session string) (*BackupCounts, error) {
	if _, err := s.Backup(ctx, user, version); err != nil {
		return nil, err
	}
	n, _ := parseVersion(version)
	b, err := s.store.DeleteBackupKeys(ctx, user, n, room, session)
	if err != nil {
		return nil, err
	}
	return &BackupCounts{ETag: strconv.FormatInt(b.ETag, 10), Count: b.Count}, nil
}
