package keyring

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// MaxQueryServers bounds the servers of one notary query we answer: each
// may cost a fetch.
const MaxQueryServers = 100

// KeyDocument is our own key response for GET /_matrix/key/v2/server:
// our verify key, our former keys with their expired_ts, valid_until_ts
// now + the validity period, signed by the current key.
func (k *Keyring) KeyDocument() []byte {
	now := k.cfg.Now()
	key := k.cfg.Key.Current()
	var old []canonicaljson.Member
	for _, o := range k.OldKeys() {
		old = append(old, canonicaljson.Member{Key: o.KeyID, Value: canonicaljson.ObjectValue(
			canonicaljson.Member{Key: "key", Value: canonicaljson.StringValue(signing.EncodeBase64(o.Key))},
			canonicaljson.Member{Key: "expired_ts", Value: canonicaljson.IntValue(o.ExpiredTS)},
		)})
	}
	obj := canonicaljson.ObjectValue(
		canonicaljson.Member{Key: "server_name", Value: canonicaljson.StringValue(string(k.cfg.ServerName))},
		canonicaljson.Member{Key: "verify_keys", Value: canonicaljson.ObjectValue(canonicaljson.Member{
			Key: key.ID(), Value: canonicaljson.ObjectValue(canonicaljson.Member{Key: "key", Value: canonicaljson.StringValue(key.PublicBase64())}),
		})},
		canonicaljson.Member{Key: "old_verify_keys", Value: canonicaljson.ObjectValue(old...)},
		canonicaljson.Member{Key: "valid_until_ts", Value: canonicaljson.IntValue(now.Add(k.cfg.ValidityPeriod).UnixMilli())},
	)
	signed, err := signing.SignServer(obj, k.cfg.ServerName, key)
	if err != nil {
		// obj is an object built above: Sign cannot fail on it.
		panic(err)
	}
	return canonicaljson.Encode(signed)
}

// Query answers a notary query (POST /_matrix/key/v2/query): for each
// server, the key responses we hold valid until at least the minimum asked
// for (fetching them from the server when we hold none), each
// countersigned by us. keyIDs per server may be empty (every key);
// minValidUntil 0 means now. Servers we cannot reach and hold nothing of
// are left out, as the spec says.
func (k *Keyring) Query(ctx context.Context, criteria map[id.ServerName]map[string]int64) ([]json.RawMessage, error) {
	if len(criteria) > MaxQueryServers {
		return nil, fmt.Errorf("%w: at most %d servers per query", ErrTooManyServers, MaxQueryServers)
	}
	now := k.cfg.Now().UnixMilli()
	out := []json.RawMessage{}
	for _, server := range sortedServers(criteria) {
		if server == k.cfg.ServerName {
			out = append(out, k.KeyDocument())
			continue
		}
		// The key id "" carries a minimum for every key (GET
		// /query/{serverName}); it filters nothing.
		keyIDs := map[string]int64{}
		minValid := now
		for keyID, ts := range criteria[server] {
			minValid = max(minValid, ts)
			if keyID != "" {
				keyIDs[keyID] = ts
			}
		}
		responses, err := k.responsesFor(ctx, server, keyIDs, minValid)
		if err != nil {
			return nil, err
		}
		if len(responses) == 0 {
			// Not held, or held but too old: ask the server itself.
			// Directly only (we are the notary), and at most once per
			// refetchInterval: a query naming many servers must not make
			// us a request amplifier.
			if err := k.fetchOnce(ctx, server, "", minValid, false); err == nil {
				if responses, err = k.responsesFor(ctx, server, keyIDs, minValid); err != nil {
					return nil, err
				}
			}
		}
		if len(responses) == 0 {
			// Still nothing recent: serve what we hold, however old; the
			// spec lets notaries answer for servers that are offline.
			if responses, err = k.responsesFor(ctx, server, keyIDs, 0); err != nil {
				return nil, err
			}
		}
		for _, resp := range responses {
			signed, err := signing.SignJSON(resp, string(k.cfg.ServerName), k.cfg.Key)
			if err != nil {
				continue // a stored response we cannot re-parse is not served
			}
			out = append(out, signed)
		}
	}
	return out, nil
}

// ErrTooManyServers refuses an oversized notary query.
var ErrTooManyServers = errors.New("too many servers in key query")

// responsesFor returns the distinct stored responses of server that hold
// one of keyIDs (any key when empty) valid at minValid (0: any).
func (k *Keyring) responsesFor(ctx context.Context, server id.ServerName, keyIDs map[string]int64, minValid int64) ([][]byte, error) {
	keys, err := k.serverKeys(ctx, server)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, sk := range keys {
		if len(keyIDs) > 0 {
			if _, ok := keyIDs[sk.KeyID]; !ok {
				continue
			}
		}
		if minValid != 0 && (sk.ExpiredTS != 0 || EffectiveValidUntil(sk) < minValid) {
			continue
		}
		if !slices.ContainsFunc(out, func(b []byte) bool { return string(b) == string(sk.Response) }) && len(sk.Response) > 0 {
			out = append(out, sk.Response)
		}
	}
	return out, nil
}

func sortedServers(m map[id.ServerName]map[string]int64) []id.ServerName {
	out := make([]id.ServerName, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// queryRequest is the body of POST /_matrix/key/v2/query.
type queryRequest struct {
	ServerKeys map[id.ServerName]map[string]queryCriteria `json:"server_keys"`
}

type queryCriteria struct {
	MinimumValidUntilTS int64 `json:"minimum_valid_until_ts,omitempty"`
}

type queryResponse struct {
	ServerKeys []json.RawMessage `json:"server_keys"`
}

// fetchFromNotary asks notary for server's keys and keeps the responses
// that the server signed and the notary countersigned.
func (k *Keyring) fetchFromNotary(ctx context.Context, notary, server id.ServerName, keyID string, minValid int64) ([]StoredKey, error) {
	req := queryRequest{ServerKeys: map[id.ServerName]map[string]queryCriteria{
		server: {keyID: {MinimumValidUntilTS: minValid}},
	}}
	var resp queryResponse
	if err := k.fetch.DoUnsigned(ctx, notary, "POST", "/_matrix/key/v2/query", req, &resp); err != nil {
		return nil, err
	}
	var keys []StoredKey
	var errs []error
	for _, raw := range resp.ServerKeys {
		if err := k.checkNotarySignature(ctx, notary, raw); err != nil {
			errs = append(errs, err)
			continue
		}
		got, err := ParseKeyResponse(raw, server, k.cfg.Now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, got...)
	}
	if len(keys) == 0 {
		if len(errs) == 0 {
			return nil, fmt.Errorf("no keys of %s", server)
		}
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// checkNotarySignature requires a valid signature of the notary on a
// response: by one of its configured keys, or, when none are configured,
// by a key fetched from the notary itself (never through another notary,
// which could loop).
func (k *Keyring) checkNotarySignature(ctx context.Context, notary id.ServerName, raw []byte) error {
	obj, err := canonicaljson.ParseLenient(raw)
	if err != nil {
		return fmt.Errorf("notary response: %w", err)
	}
	configured := k.cfg.Notaries[notary]
	for _, keyID := range signing.KeyIDs(obj, string(notary)) {
		var pub ed25519.PublicKey
		if len(configured) > 0 {
			pub = configured[keyID]
		} else {
			pub, _ = k.lookup(ctx, notary, keyID, k.cfg.Now().UnixMilli(), false)
		}
		if pub == nil {
			continue
		}
		if err := signing.Verify(obj, string(notary), keyID, pub); err == nil {
			return nil
		}
	}
	return fmt.Errorf("response is not signed by notary %s with a key we trust", notary)
}
