package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

// Keys implements keys.Store: device, one-time, fallback and
// cross-signing keys, signatures, the device lists and to-device streams
// and key backups (sql/0011).
type Keys struct {
	pool *pgxpool.Pool
	// counts and toDeviceEmpty spare a sync the reads whose answers did
	// not change (keys_sync_cache.go).
	counts        *keyCountCache
	toDeviceEmpty *toDeviceEmpty
}

var _ keys.Store = (*Keys)(nil)

// NewKeys returns the E2EE store on pool.
func NewKeys(pool *pgxpool.Pool) *Keys {
	return &Keys{pool: pool, counts: &keyCountCache{}, toDeviceEmpty: &toDeviceEmpty{}}
}

const (
	selectDeviceKeyJSON = `SELECT key_json FROM device_keys WHERE user_id = $1 AND device_id = $2`
	upsertDeviceKeys    = `
INSERT INTO device_keys (user_id, device_id, key_json, ts) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = EXCLUDED.key_json, ts = EXCLUDED.ts`
	selectOneTimeKey = `
SELECT key_json FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`
	insertOneTimeKey = `
INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING`
	upsertFallbackKey = `
INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES ($1, $2, $3, $4, $5, FALSE)
ON CONFLICT (user_id, device_id, algorithm) DO UPDATE
SET key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json,
    used = fallback_keys.used AND fallback_keys.key_json = EXCLUDED.key_json`
	// selectKeyCounts: one-time key counts per algorithm, then the unused
	// fallback key algorithms.
	selectKeyCounts = `
SELECT algorithm, count(*)::int, FALSE FROM one_time_keys WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm
UNION ALL
SELECT algorithm, 0, TRUE FROM fallback_keys WHERE user_id = $1 AND device_id = $2 AND NOT used
ORDER BY 3, 1`
	selectDeviceKeysOf = `
SELECT k.user_id, k.device_id, k.key_json, coalesce(d.display_name, '')
FROM device_keys k JOIN devices d USING (user_id, device_id)
WHERE k.user_id = ANY($1) ORDER BY k.user_id, k.device_id`
	selectAllDevices = `
SELECT d.user_id, d.device_id, k.key_json, coalesce(d.display_name, '')
FROM devices d LEFT JOIN device_keys k USING (user_id, device_id)
WHERE d.user_id = $1 ORDER BY d.device_id`
	// claimOneTimeKey takes the oldest key of the algorithm; SKIP LOCKED
	// lets concurrent claims take different keys instead of waiting.
	claimOneTimeKey = `
DELETE FROM one_time_keys WHERE ctid = (
    SELECT ctid FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
    ORDER BY upload_seq LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING key_id, key_json`
	claimFallbackKey = `
UPDATE fallback_keys SET used = TRUE WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
RETURNING key_id, key_json`
	insertDeviceListChange = `INSERT INTO device_list_changes (stream_pos, user_id) VALUES ($1, $2)`
)

// UploadKeys implements keys.KeyStore.
func (s *Keys) UploadKeys(ctx context.Context, user id.UserID, device id.DeviceID, deviceKeys json.RawMessage, otks, fallbacks []keys.OneTimeKey) (int64, error) {
	// After the commit (or the rollback): the next sync reads the counts.
	defer s.counts.drop(user, device)
	var pos int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if deviceKeys != nil {
			var old []byte
			err := tx.QueryRow(ctx, selectDeviceKeyJSON, user, device).Scan(&old)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if string(old) != string(deviceKeys) {
				if _, err := tx.Exec(ctx, upsertDeviceKeys, user, device, []byte(deviceKeys), time.Now().UnixMilli()); err != nil {
					return err
				}
				if pos, err = markDeviceListChanged(ctx, tx, user); err != nil {
					return err
				}
				// The EDU telling the servers sharing a room commits with
				// the change (keys/outbox.go relays it).
				if _, err := tx.Exec(ctx, insertOutboxDevice, user, device, pos, false); err != nil {
					return err
				}
			}
		}
		for _, k := range otks {
			tag, err := tx.Exec(ctx, insertOneTimeKey, user, device, k.Algorithm, k.KeyID, []byte(k.Key))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				var old []byte
				if err := tx.QueryRow(ctx, selectOneTimeKey, user, device, k.Algorithm, k.KeyID).Scan(&old); err != nil {
					return err
				}
				if string(old) != string(k.Key) {
					return keys.ErrKeyConflict
				}
			}
		}
		for _, k := range fallbacks {
			if _, err := tx.Exec(ctx, upsertFallbackKey, user, device, k.Algorithm, k.KeyID, []byte(k.Key)); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, keys.ErrKeyConflict) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("upload keys of %s %s: %w", user, device, err)
	}
	return pos, nil
}

// markDeviceListChanged takes the next device lists position for user.
func markDeviceListChanged(ctx context.Context, tx pgx.Tx, user id.UserID) (int64, error) {
	var pos int64
	if err := tx.QueryRow(ctx, nextStreamPos, "device_lists").Scan(&pos); err != nil {
		return 0, err
	}
	_, err := tx.Exec(ctx, insertDeviceListChange, pos, user)
	return pos, err
}

// KeyCounts implements keys.KeyStore: every sync of every device asks,
// and the answer changes only with an upload or a claim (keyCountCache).
func (s *Keys) KeyCounts(ctx context.Context, user id.UserID, device id.DeviceID) (map[string]int, []string, error) {
	counts, fallbacks, ok, gen := s.counts.get(user, device)
	if ok {
		return counts, fallbacks, nil
	}
	counts, fallbacks, err := s.readKeyCounts(ctx, user, device)
	if err != nil {
		return nil, nil, err
	}
	s.counts.put(user, device, gen, counts, fallbacks)
	return counts, fallbacks, nil
}

// ForgetDevices drops what the store keeps of the devices of user — all
// of them when devices is nil — after they were deleted or created
// elsewhere (the accounts store): a device created again under its id
// then shows its true counts (none) at its first sync.
func (s *Keys) ForgetDevices(user id.UserID, devices []id.DeviceID) {
	if devices == nil {
		s.counts.dropUser(user)
		return
	}
	for _, d := range devices {
		s.counts.drop(user, d)
	}
}

func (s *Keys) readKeyCounts(ctx context.Context, user id.UserID, device id.DeviceID) (map[string]int, []string, error) {
	rows, err := s.pool.Query(ctx, selectKeyCounts, user, device)
	if err != nil {
		return nil, nil, fmt.Errorf("key counts of %s %s: %w", user, device, err)
	}
	defer rows.Close()
	counts, fallbacks := map[string]int{}, []string{}
	for rows.Next() {
		var alg string
		var n int
		var fallback bool
		if err := rows.Scan(&alg, &n, &fallback); err != nil {
			return nil, nil, err
		}
		if fallback {
			fallbacks = append(fallbacks, alg)
		} else {
			counts[alg] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("key counts of %s %s: %w", user, device, err)
	}
	return counts, fallbacks, nil
}

// DeviceKeys implements keys.KeyStore.
func (s *Keys) DeviceKeys(ctx context.Context, users []id.UserID) ([]keys.DeviceKeys, error) {
	rows, err := s.pool.Query(ctx, selectDeviceKeysOf, userStrings(users))
	if err != nil {
		return nil, fmt.Errorf("device keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.DeviceKeys, error) {
		var dk keys.DeviceKeys
		var raw []byte
		err := row.Scan(&dk.User, &dk.Device, &raw, &dk.DisplayName)
		dk.Keys = raw
		return dk, err
	})
	if err != nil {
		return nil, fmt.Errorf("device keys: %w", err)
	}
	return out, nil
}

// AllDevices implements keys.KeyStore.
func (s *Keys) AllDevices(ctx context.Context, user id.UserID) ([]keys.DeviceKeys, error) {
	rows, err := s.pool.Query(ctx, selectAllDevices, user)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.DeviceKeys, error) {
		var dk keys.DeviceKeys
		var raw []byte
		err := row.Scan(&dk.User, &dk.Device, &raw, &dk.DisplayName)
		if raw != nil {
			dk.Keys = raw
		}
		return dk, err
	})
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", user, err)
	}
	return out, nil
}

// ClaimKeys implements keys.KeyStore. Each claim is its own short
// transaction: a claimed key is gone for good once answered.
func (s *Keys) ClaimKeys(ctx context.Context, reqs []keys.ClaimRequest) ([]keys.ClaimedKey, error) {
	var out []keys.ClaimedKey
	for _, r := range reqs {
		var keyID string
		var raw []byte
		err := s.pool.QueryRow(ctx, claimOneTimeKey, r.User, r.Device, r.Algorithm).Scan(&keyID, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			err = s.pool.QueryRow(ctx, claimFallbackKey, r.User, r.Device, r.Algorithm).Scan(&keyID, &raw)
		}
		// Even when nothing was claimed: a device that has run out (or
		// was created again under its id) then shows its true counts.
		s.counts.drop(r.User, r.Device)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claim key of %s %s: %w", r.User, r.Device, err)
		}
		out = append(out, keys.ClaimedKey{User: r.User, Device: r.Device, KeyID: r.Algorithm + ":" + keyID, Key: raw})
	}
	return out, nil
}

func userStrings(users []id.UserID) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = string(u)
	}
	return out
}
