// Package keyring holds the server's own key document and the verify keys
// of other servers (Server-Server API, "Retrieving server keys"): fetched
// from the server itself, else through the configured notaries, verified,
// and cached in the database honouring valid_until_ts. It also answers
// notary queries for keys it holds or can fetch.
//
// It is part of the federation edge: it may use the HTTP client (through
// the small Fetcher interface) but knows nothing of routing.
package keyring

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// MaxValidity caps a key's valid_until_ts at 7 days after it was fetched:
// "Servers MUST use the lesser of this field and 7 days into the future"
// (definitions/keys.yaml), so a stolen key cannot be made valid for long.
const MaxValidity = 7 * 24 * time.Hour

// refetchInterval is the shortest time between two fetches of a server's
// keys for a key we know (one no longer valid at the time asked for), and
// between two fetches for the same key id: a server that does not answer
// must not cost every request a round of timeouts.
//
// A key id never seen for a server (it rotated its key: app/keyrotation.go)
// is fetched at once, so that its first request or event signed with the
// new key is accepted, not refused until refetchInterval passes. Requests
// naming made-up key ids must not make us fetch once each: after a fetch
// that did not bring the key id asked for, the server's keys are fetched
// for no other unknown key id for unknownKeyFloor, or refetchInterval when
// no source answered; a fetch that brought the key asked for leaves no
// such floor.
const refetchInterval = 30 * time.Second

// unknownKeyFloor is the shortest time between a fetch of a server's keys
// that did not bring the key id asked for and the next fetch for another
// unknown key id of that server.
const unknownKeyFloor = time.Second

// maxFetchedKeyIDs bounds keyFetched before entries older than
// refetchInterval are dropped.
const maxFetchedKeyIDs = 4096

// errFetchedRecently is the fetch error within refetchInterval.
var errFetchedRecently = errors.New("keys fetched moments ago; not fetching again yet")

// ErrKeyNotFound is returned when a key cannot be found or is not valid at
// the time asked for.
var ErrKeyNotFound = errors.New("server key not found")

// StoredKey is one verify key of a server, as cached.
type StoredKey struct {
	Server id.ServerName
	KeyID  string
	Key    ed25519.PublicKey
	// ValidUntilTS is the valid_until_ts of the response that listed the
	// key in verify_keys (ms); for an old key, the response's too.
	ValidUntilTS int64
	// ExpiredTS is 0 for a current verify key, the expired_ts of an
	// old_verify_keys entry otherwise.
	ExpiredTS int64
	// FetchedTS is when we received the response (ms).
	FetchedTS int64
	// Response is the server's signed key response the key came from,
	// canonical JSON with only the server's own signatures: what we serve
	// as a notary.
	Response []byte
}

// Store caches remote server keys; storage.ServerKeys implements it.
type Store interface {
	// ServerKeys returns every cached key of server.
	ServerKeys(ctx context.Context, server id.ServerName) ([]StoredKey, error)
	// StoreServerKeys upserts keys by (server, key id).
	StoreServerKeys(ctx context.Context, keys []StoredKey) error
}

// Fetcher makes unauthenticated requests to other servers' key endpoints;
// fedclient.Client implements it.
type Fetcher interface {
	DoUnsigned(ctx context.Context, destination id.ServerName, method, path string, reqBody, respBody any) error
}

// Config configures a Keyring.
type Config struct {
	ServerName id.ServerName
	Key        signing.Key
	// ValidityPeriod sets our key document's valid_until_ts.
	ValidityPeriod time.Duration
	// OldKeys are our former keys, listed in old_verify_keys so that
	// events they signed stay verifiable.
	OldKeys []OldKey
	// Notaries are the trusted key servers, each with its verify keys, or
	// an empty map to use the notary's own keys fetched from it directly.
	Notaries map[id.ServerName]map[string]ed25519.PublicKey
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Registry receives the key fetch metrics; nil: none.
	Registry prometheus.Registerer
}

// OldKey is one of our former verify keys.
type OldKey struct {
	KeyID     string
	Key       ed25519.PublicKey
	ExpiredTS int64 // ms; the key signs nothing made at or after it
}

// Keyring is the key store of one server.
type Keyring struct {
	cfg Config
	// oldKeys, once set, replaces cfg.OldKeys.
	oldKeys atomic.Pointer[[]OldKey]
	store   Store
	fetch   Fetcher
	logger  *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	inflight map[id.ServerName]*fetchCall
	// lastFetch is when each server's keys were last fetched.
	lastFetch map[id.ServerName]time.Time
	// keyFetched is when the keys were last fetched for a key id, and
	// unknownUntil until when a server's keys are not fetched for a key id
	// never seen (refetchInterval).
	keyFetched   map[fetchKeyID]time.Time
	unknownUntil map[id.ServerName]time.Time
	// mem caches the store's answer per server: every inbound request and
	// every event signature looks a key up.
	mem map[id.ServerName]memEntry
	// stored counts the stores of fetched keys. A read of the store that
	// began before a store and ended after it is not kept in mem: it may
	// predate the keys just stored, and would hide them for memTTL.
	stored uint64
}

type memEntry struct {
	keys   []StoredKey
	loaded time.Time
}

// memTTL bounds how long a server's keys are served from memory before
// the store is read again (another node may have fetched newer ones).
const memTTL = 5 * time.Minute

// serverKeys returns server's cached keys, from memory when fresh.
func (k *Keyring) serverKeys(ctx context.Context, server id.ServerName) ([]StoredKey, error) {
	now := time.Now()
	k.mu.Lock()
	e, ok := k.mem[server]
	storedBefore := k.stored
	k.mu.Unlock()
	if ok && now.Sub(e.loaded) < memTTL {
		return e.keys, nil
	}
	keys, err := k.store.ServerKeys(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("read keys of %s: %w", server, err)
	}
	k.mu.Lock()
	if k.stored == storedBefore {
		k.mem[server] = memEntry{keys: keys, loaded: now}
	}
	k.mu.Unlock()
	return keys, nil
}

// storeKeys writes fetched keys and drops the memory copy of their server.
func (k *Keyring) storeKeys(ctx context.Context, keys []StoredKey) error {
	if err := k.store.StoreServerKeys(ctx, keys); err != nil {
		return err
	}
	k.mu.Lock()
	k.stored++
	for _, sk := range keys {
		delete(k.mem, sk.Server)
	}
	k.mu.Unlock()
	return nil
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// fetchKeyID is a key id of a server.
type fetchKeyID struct {
	server id.ServerName
	keyID  string
}

// New returns the keyring of cfg.ServerName.
func New(cfg Config, store Store, fetch Fetcher, logger *slog.Logger) *Keyring {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ValidityPeriod <= 0 {
		cfg.ValidityPeriod = 24 * time.Hour
	}
	return &Keyring{cfg: cfg, store: store, fetch: fetch, logger: logger, metrics: newMetrics(cfg.Registry),
		inflight: map[id.ServerName]*fetchCall{}, lastFetch: map[id.ServerName]time.Time{}, mem: map[id.ServerName]memEntry{},
		keyFetched: map[fetchKeyID]time.Time{}, unknownUntil: map[id.ServerName]time.Time{}}
}

// OldKeys are our former keys, as configured or as SetOldKeys replaced
// them.
func (k *Keyring) OldKeys() []OldKey {
	if p := k.oldKeys.Load(); p != nil {
		return *p
	}
	return k.cfg.OldKeys
}

// SetOldKeys replaces our former keys (a rotation while running: the key
// that signed until now joins them). Config.Key, a signing.Live's key,
// follows the rotation by itself.
func (k *Keyring) SetOldKeys(old []OldKey) { k.oldKeys.Store(&old) }

// ServerName is our server name.
func (k *Keyring) ServerName() id.ServerName { return k.cfg.ServerName }

// SigningKey is our signing key.
func (k *Keyring) SigningKey() signing.Key { return k.cfg.Key }

// VerifyKey returns server's public key keyID. It fits rooms/event.KeyLookup
// and xmatrix.KeyFunc. atTS is the time (ms) the key must be valid at:
// an event's origin_server_ts in room versions 5 and later, now for a
// request; 0 accepts any key the server has had (room versions 1–4, whose
// events ignore valid_until_ts). A key not cached, or not valid at atTS, is
// fetched from the server, then from the notaries.
func (k *Keyring) VerifyKey(ctx context.Context, server id.ServerName, keyID string, atTS int64) (ed25519.PublicKey, error) {
	return k.lookup(ctx, server, keyID, atTS, true)
}

func (k *Keyring) lookup(ctx context.Context, server id.ServerName, keyID string, atTS int64, viaNotaries bool) (ed25519.PublicKey, error) {
	if server == k.cfg.ServerName {
		if cur := k.cfg.Key.Current(); keyID == cur.ID() {
			return cur.Public(), nil
		}
		for _, old := range k.OldKeys() {
			if old.KeyID == keyID && (atTS == 0 || atTS < old.ExpiredTS) {
				return old.Key, nil
			}
		}
		return nil, fmt.Errorf("%w: %s is not a key of this server", ErrKeyNotFound, keyID)
	}
	pub, ok, seen, err := k.cachedKey(ctx, server, keyID, atTS)
	if err != nil || ok {
		return pub, err
	}
	minValid := atTS
	if minValid == 0 {
		minValid = k.cfg.Now().UnixMilli()
	}
	fetchErr := k.fetchFor(ctx, server, keyID, !seen, minValid, viaNotaries)
	pub, ok, err = k.cached(ctx, server, keyID, atTS)
	if err != nil || ok {
		return pub, err
	}
	if fetchErr != nil {
		return nil, fmt.Errorf("%w: %s of %s: %w", ErrKeyNotFound, keyID, server, fetchErr)
	}
	return nil, fmt.Errorf("%w: %s of %s is not valid at %d", ErrKeyNotFound, keyID, server, atTS)
}

// cached looks the key up in the store.
func (k *Keyring) cached(ctx context.Context, server id.ServerName, keyID string, atTS int64) (ed25519.PublicKey, bool, error) {
	pub, ok, _, err := k.cachedKey(ctx, server, keyID, atTS)
	return pub, ok, err
}

// cachedKey is cached, also telling whether the key id is held at all
// (valid at atTS or not).
func (k *Keyring) cachedKey(ctx context.Context, server id.ServerName, keyID string, atTS int64) (pub ed25519.PublicKey, ok, seen bool, err error) {
	keys, err := k.serverKeys(ctx, server)
	if err != nil {
		return nil, false, false, err
	}
	for _, sk := range keys {
		if sk.KeyID != keyID {
			continue
		}
		seen = true
		if ValidAt(sk, atTS) {
			return sk.Key, true, true, nil
		}
	}
	return nil, false, seen, nil
}

// ValidAt says whether a cached key may verify something made at atTS
// (ms; 0: any time). An old key is valid before its expired_ts; a verify
// key until valid_until_ts, capped at MaxValidity after it was fetched.
func ValidAt(sk StoredKey, atTS int64) bool {
	if atTS == 0 {
		return true
	}
	if sk.ExpiredTS != 0 {
		return atTS < sk.ExpiredTS
	}
	return atTS <= EffectiveValidUntil(sk)
}

// EffectiveValidUntil is valid_until_ts capped at MaxValidity after fetch.
func EffectiveValidUntil(sk StoredKey) int64 {
	return min(sk.ValidUntilTS, sk.FetchedTS+MaxValidity.Milliseconds())
}

// fetchOnce fetches server's keys for a key it knows (or any key: keyID
// ""), at most once per refetchInterval.
func (k *Keyring) fetchOnce(ctx context.Context, server id.ServerName, keyID string, minValid int64, viaNotaries bool) error {
	return k.fetchFor(ctx, server, keyID, false, minValid, viaNotaries)
}

// fetchFor fetches server's keys, sharing one fetch among concurrent callers,
// within the bounds of refetchInterval: for a key id never seen (unknown),
// unless that key id was asked for within refetchInterval or the server
// is within the floor a fetch that did not bring its key left
// (unknownKeyFloor); else unless the server's keys were fetched within
// refetchInterval. The shared fetch does not end with the context of the
// caller that started it (each request is bounded by the client's
// timeout); each caller stops waiting when its own context ends. A
// direct-only fetch (a notary's own keys, looked up while fetching through
// it) never waits on another fetch, so two fetches cannot wait on each
// other.
func (k *Keyring) fetchFor(ctx context.Context, server id.ServerName, keyID string, unknown bool, minValid int64, viaNotaries bool) error {
	k.mu.Lock()
	if call, ok := k.inflight[server]; ok {
		k.mu.Unlock()
		if !viaNotaries {
			return k.fetchKeys(ctx, server, keyID, minValid, false)
		}
		select {
		case <-call.done:
			return call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := k.cfg.Now()
	within := func(last time.Time, ok bool, d time.Duration) bool {
		return ok && now.Sub(last) < d && now.Sub(last) >= 0
	}
	wanted := fetchKeyID{server, keyID}
	if unknown && keyID != "" {
		last, ok := k.keyFetched[wanted]
		if within(last, ok, refetchInterval) || now.Before(k.unknownUntil[server]) {
			k.mu.Unlock()
			return errFetchedRecently
		}
	} else if last, ok := k.lastFetch[server]; within(last, ok, refetchInterval) {
		k.mu.Unlock()
		return errFetchedRecently
	}
	k.lastFetch[server] = now
	if keyID != "" {
		k.rememberKeyFetch(wanted, now)
	}
	// Until this fetch is known to have brought the key, no fetch for
	// another unknown key id.
	k.unknownUntil[server] = now.Add(unknownKeyFloor)
	call := &fetchCall{done: make(chan struct{})}
	k.inflight[server] = call
	k.mu.Unlock()
	call.err = k.fetchKeys(context.WithoutCancel(ctx), server, keyID, minValid, viaNotaries)
	_, brought, _ := k.cached(context.WithoutCancel(ctx), server, keyID, 0)
	k.mu.Lock()
	switch {
	case brought:
		delete(k.unknownUntil, server)
	case call.err != nil:
		// No source answered: asking again for other key ids now would
		// cost a round of timeouts each.
		k.unknownUntil[server] = now.Add(refetchInterval)
	}
	delete(k.inflight, server)
	k.mu.Unlock()
	close(call.done)
	return call.err
}

// rememberKeyFetch records a fetch for a key id (k.mu held), dropping the
// records refetchInterval no longer reads once there are many.
func (k *Keyring) rememberKeyFetch(key fetchKeyID, now time.Time) {
	if len(k.keyFetched) >= maxFetchedKeyIDs {
		for fk, at := range k.keyFetched {
			if now.Sub(at) >= refetchInterval || now.Before(at) {
				delete(k.keyFetched, fk)
			}
		}
	}
	k.keyFetched[key] = now
}

// fetchKeys asks the server itself, then each notary, and stores what
// verifies. It stops at the first source that gives the wanted key valid
// at minValid.
func (k *Keyring) fetchKeys(ctx context.Context, server id.ServerName, keyID string, minValid int64, viaNotaries bool) error {
	var errs []error
	keys, err := k.fetchDirect(ctx, server)
	k.metrics.observe("direct", err)
	if err == nil {
		if err := k.storeKeys(ctx, keys); err != nil {
			return fmt.Errorf("store keys of %s: %w", server, err)
		}
		if hasValid(keys, keyID, minValid) {
			return nil
		}
	} else {
		errs = append(errs, fmt.Errorf("direct: %w", err))
		k.logger.DebugContext(ctx, "fetch server keys", slog.String("server_name", string(server)), slog.String("error", err.Error()))
	}
	if !viaNotaries {
		return errors.Join(errs...)
	}
	for _, notary := range slices.Sorted(maps.Keys(k.cfg.Notaries)) {
		if notary == server || notary == k.cfg.ServerName {
			continue
		}
		keys, err := k.fetchFromNotary(ctx, notary, server, keyID, minValid)
		k.metrics.observe("notary", err)
		if err != nil {
			errs = append(errs, fmt.Errorf("notary %s: %w", notary, err))
			continue
		}
		if err := k.storeKeys(ctx, keys); err != nil {
			return fmt.Errorf("store keys of %s: %w", server, err)
		}
		if hasValid(keys, keyID, minValid) {
			return nil
		}
	}
	return errors.Join(errs...)
}

func hasValid(keys []StoredKey, keyID string, atTS int64) bool {
	for _, sk := range keys {
		if sk.KeyID == keyID && ValidAt(sk, atTS) {
			return true
		}
	}
	return false
}

// fetchDirect is GET /_matrix/key/v2/server on the server itself.
func (k *Keyring) fetchDirect(ctx context.Context, server id.ServerName) ([]StoredKey, error) {
	var raw []byte
	if err := k.fetch.DoUnsigned(ctx, server, "GET", "/_matrix/key/v2/server", nil, &raw); err != nil {
		return nil, err
	}
	return ParseKeyResponse(raw, server, k.cfg.Now())
}

// ParseKeyResponse checks a server's key response (definitions/keys.yaml):
// server_name is the server asked about, every ed25519 verify key signs the
// response, and returns its keys. Signatures of other servers (notaries)
// are dropped from the kept Response.
func ParseKeyResponse(raw []byte, server id.ServerName, now time.Time) ([]StoredKey, error) {
	obj, err := canonicaljson.ParseLenient(raw)
	if err != nil {
		return nil, fmt.Errorf("key response: %w", err)
	}
	name, _ := obj.GetString("server_name")
	if id.ServerName(name) != server {
		return nil, fmt.Errorf("key response is for %q, not %s", name, server)
	}
	validUntil, _ := obj.Get("valid_until_ts")
	until, ok := validUntil.Int()
	if !ok {
		return nil, errors.New("key response: valid_until_ts is not an integer")
	}
	fetched := now.UnixMilli()
	var keys []StoredKey
	verify, _ := obj.Get("verify_keys")
	if verify.Kind() != canonicaljson.Object {
		return nil, errors.New("key response: verify_keys is not an object")
	}
	for _, m := range verify.Members() {
		pub, ok := parseKeyEntry(m)
		if !ok {
			continue // another algorithm: not ours to check
		}
		if err := signing.Verify(obj, string(server), m.Key, pub); err != nil {
			return nil, fmt.Errorf("key response of %s: verify key %s: %w", server, m.Key, err)
		}
		keys = append(keys, StoredKey{Server: server, KeyID: m.Key, Key: pub, ValidUntilTS: until, FetchedTS: fetched})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key response of %s has no ed25519 verify key", server)
	}
	old, _ := obj.Get("old_verify_keys")
	for _, m := range old.Members() {
		pub, ok := parseKeyEntry(m)
		if !ok {
			continue
		}
		expired, _ := m.Value.Get("expired_ts")
		ts, ok := expired.Int()
		if !ok || ts <= 0 {
			continue
		}
		keys = append(keys, StoredKey{Server: server, KeyID: m.Key, Key: pub, ValidUntilTS: until, ExpiredTS: ts, FetchedTS: fetched})
	}
	// Keep the server's own signatures only: a notary serving this
	// response adds its own.
	sigs, _ := obj.Get("signatures")
	mine, _ := sigs.Get(string(server))
	kept := canonicaljson.Encode(obj.With("signatures", canonicaljson.ObjectValue(canonicaljson.Member{Key: string(server), Value: mine})))
	for i := range keys {
		keys[i].Response = kept
	}
	return keys, nil
}

func parseKeyEntry(m canonicaljson.Member) (ed25519.PublicKey, bool) {
	if !signing.ValidKeyID(m.Key) {
		return nil, false
	}
	b64, ok := m.Value.GetString("key")
	if !ok {
		return nil, false
	}
	pub, err := signing.ParsePublicKey(b64)
	if err != nil {
		return nil, false
	}
	return pub, true
}

// metrics count key fetches by source (direct, notary) and result.
type metrics struct {
	fetches *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_federation_key_fetches_total",
		Help: "Fetches of other servers' keys, by source (direct, notary) and result (ok, error).",
	}, []string{"source", "result"})}
	if reg != nil {
		reg.MustRegister(m.fetches)
	}
	return m
}

func (m *metrics) observe(source string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fetches.WithLabelValues(source, result).Inc()
}
