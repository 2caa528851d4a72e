package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

const (
	selectCrossSigningKeys = `SELECT user_id, usage, key_json FROM cross_signing_keys WHERE user_id = ANY($1)`
	upsertCrossSigningKey  = `
INSERT INTO cross_signing_keys (user_id, usage, key_json, ts) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, usage) DO UPDATE SET key_json = EXCLUDED.key_json, ts = EXCLUDED.ts`
	upsertKeySignature = `
INSERT INTO key_signatures (target_user, target_key, signer_user, signer_key_id, signature) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (target_user, target_key, signer_user, signer_key_id) DO UPDATE SET signature = EXCLUDED.signature`
	selectKeySignatures = `
SELECT target_user, target_key, signer_user, signer_key_id, signature FROM key_signatures
WHERE target_user = ANY($1) ORDER BY target_user, target_key, signer_user, signer_key_id`
)

// CrossSigningKeys implements keys.CrossSigningStore.
func (s *Keys) CrossSigningKeys(ctx context.Context, users []id.UserID) (map[id.UserID]map[string]json.RawMessage, error) {
	rows, err := s.pool.Query(ctx, selectCrossSigningKeys, userStrings(users))
	if err != nil {
		return nil, fmt.Errorf("cross-signing keys: %w", err)
	}
	defer rows.Close()
	out := map[id.UserID]map[string]json.RawMessage{}
	for rows.Next() {
		var u id.UserID
		var usage string
		var raw []byte
		if err := rows.Scan(&u, &usage, &raw); err != nil {
			return nil, err
		}
		if out[u] == nil {
			out[u] = map[string]json.RawMessage{}
		}
		out[u][usage] = raw
	}
	return out, rows.Err()
}

// PutCrossSigningKeys implements keys.CrossSigningStore.
func (s *Keys) PutCrossSigningKeys(ctx context.Context, user id.UserID, ks map[string]json.RawMessage) (int64, error) {
	var pos int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := time.Now().UnixMilli()
		for usage, raw := range ks {
			if _, err := tx.Exec(ctx, upsertCrossSigningKey, user, usage, []byte(raw), now); err != nil {
				return err
			}
		}
		var err error
		if pos, err = markDeviceListChanged(ctx, tx, user); err != nil {
			return err
		}
		// m.signing_key_update carries the master and self-signing keys;
		// the user-signing key stays home.
		_, master := ks[keys.UsageMaster]
		_, selfSigning := ks[keys.UsageSelfSigning]
		if master || selfSigning {
			_, err = tx.Exec(ctx, insertOutboxSigning, pos, user)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put cross-signing keys of %s: %w", user, err)
	}
	return pos, nil
}

// PutSignatures implements keys.CrossSigningStore.
func (s *Keys) PutSignatures(ctx context.Context, sigs []keys.Signature) (map[id.UserID]int64, error) {
	changed := map[id.UserID]int64{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, sg := range sigs {
			if _, err := tx.Exec(ctx, upsertKeySignature, sg.TargetUser, sg.TargetKey, sg.Signer, sg.SignerKeyID, sg.Signature); err != nil {
				return err
			}
		}
		// Each signed device of a local user is a change of its own (one
		// m.device_list_update each, with a stream_id of its own); a
		// signature of the user's own master key is an m.signing_key_update;
		// anything else (another user's master key signed with the
		// user-signing key) is a change for local trackers only.
		type target struct {
			user id.UserID
			key  string
		}
		done := map[target]bool{}
		for _, sg := range sigs {
			t := target{sg.TargetUser, sg.TargetKey}
			if done[t] {
				continue
			}
			done[t] = true
			pos, err := markDeviceListChanged(ctx, tx, sg.TargetUser)
			if err != nil {
				return err
			}
			changed[sg.TargetUser] = pos
			var isDevice bool
			if err := tx.QueryRow(ctx, selectIsDeviceWithKeys, sg.TargetUser, sg.TargetKey).Scan(&isDevice); err != nil {
				return err
			}
			switch {
			case isDevice:
				_, err = tx.Exec(ctx, insertOutboxDevice, sg.TargetUser, sg.TargetKey, pos, false)
			case sg.Signer == sg.TargetUser:
				_, err = tx.Exec(ctx, insertOutboxSigning, pos, sg.TargetUser)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("put signatures: %w", err)
	}
	return changed, nil
}

// Signatures implements keys.CrossSigningStore.
func (s *Keys) Signatures(ctx context.Context, users []id.UserID) ([]keys.Signature, error) {
	rows, err := s.pool.Query(ctx, selectKeySignatures, userStrings(users))
	if err != nil {
		return nil, fmt.Errorf("key signatures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.Signature, error) {
		var sg keys.Signature
		err := row.Scan(&sg.TargetUser, &sg.TargetKey, &sg.Signer, &sg.SignerKeyID, &sg.Signature)
		return sg, err
	})
	if err != nil {
		return nil, fmt.Errorf("key signatures: %w", err)
	}
	return out, nil
}
