package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// QueryResponse is the body of POST /keys/query (and, without
// user_signing_keys, of the federation /user/keys/query).
type QueryResponse struct {
	Failures        map[string]json.RawMessage                    `json:"failures"`
	DeviceKeys      map[id.UserID]map[id.DeviceID]json.RawMessage `json:"device_keys"`
	MasterKeys      map[id.UserID]json.RawMessage                 `json:"master_keys"`
	SelfSigningKeys map[id.UserID]json.RawMessage                 `json:"self_signing_keys"`
	UserSigningKeys map[id.UserID]json.RawMessage                 `json:"user_signing_keys,omitempty"`
}

// maxQueryUsers bounds the users of one query.
const maxQueryUsers = 10000

// Query handles POST /keys/query for requester: the devices asked for
// (all of a user's when the list is empty) with the signatures others
// uploaded merged in, and the users' master and self-signing keys; the
// requester's own user-signing key only to the requester (spec: it is
// private to its owner's devices). Remote users who share a room with a
// local user are answered from the cache of their device lists
// (remotecache.go), filled on first use; the others are asked through
// RemoteKeys, per server; a server that fails is listed in failures.
func (s *Service) Query(ctx context.Context, requester id.UserID, want map[id.UserID][]id.DeviceID) (*QueryResponse, error) {
	if len(want) > maxQueryUsers {
		return nil, mxerr.TooLarge.WithStatus(400).Msgf("at most %d users per query", maxQueryUsers)
	}
	local := map[id.UserID][]id.DeviceID{}
	remote := map[id.ServerName]map[id.UserID][]id.DeviceID{}
	for u, devs := range want {
		if _, err := id.ParseUserID(string(u)); err != nil {
			continue
		}
		if s.isLocal(u) {
			local[u] = devs
			continue
		}
		if remote[u.Server()] == nil {
			remote[u.Server()] = map[id.UserID][]id.DeviceID{}
		}
		remote[u.Server()][u] = devs
	}
	resp, err := s.queryLocal(ctx, local, requester)
	if err != nil {
		return nil, err
	}
	s.eachServer(len(remote), func(add func(func())) {
		for server, users := range remote {
			add(func() {
				if rest := s.queryCached(ctx, server, users, resp); len(rest) > 0 {
					s.queryRemote(ctx, server, rest, resp)
				}
			})
		}
	})
	if requester != "" && len(remote) > 0 {
		if err := s.mergeOwnSignatures(ctx, requester, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// mergeOwnSignatures adds to remote users' master keys in resp the
// signatures requester uploaded for them (their user-signing key's): the
// user's server does not know them, and the requester's devices must see
// them to trust the user (spec "Cross-signing").
func (s *Service) mergeOwnSignatures(ctx context.Context, requester id.UserID, resp *QueryResponse) error {
	var users []id.UserID
	for u := range resp.MasterKeys {
		if !s.isLocal(u) {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return nil
	}
	sigs, err := s.store.Signatures(ctx, users)
	if err != nil {
		return err
	}
	for _, sg := range sigs {
		if sg.Signer != requester {
			continue
		}
		obj, err := canonicaljson.ParseLenient(resp.MasterKeys[sg.TargetUser])
		if err != nil || crossSigningPublicKey(obj) != sg.TargetKey {
			continue
		}
		resp.MasterKeys[sg.TargetUser] = canonicaljson.Encode(mergeSignatures(obj, []Signature{sg}))
	}
	return nil
}

// remoteTimeout bounds one remote server's answer to a key query or
// claim (the spec's default timeout of /keys/query and /keys/claim).
const remoteTimeout = 10 * time.Second

// maxRemoteInFlight bounds the remote servers asked at once for one
// request.
const maxRemoteInFlight = 16

// eachServer runs the calls queued by queue concurrently (one per remote
// server: a slow server must not add its delay to every other's), at most
// maxRemoteInFlight at a time, and waits for them; they merge into the
// response under mergeMu.
func (s *Service) eachServer(n int, queue func(add func(func()))) {
	if n == 0 {
		return
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxRemoteInFlight)
	queue(func(call func()) {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			call()
		}()
	})
	wg.Wait()
}

func newQueryResponse() *QueryResponse {
	return &QueryResponse{Failures: map[string]json.RawMessage{},
		DeviceKeys:      map[id.UserID]map[id.DeviceID]json.RawMessage{},
		MasterKeys:      map[id.UserID]json.RawMessage{},
		SelfSigningKeys: map[id.UserID]json.RawMessage{}}
}

// queryLocal answers for local users; requester ("" for a server) gets
// their own user-signing key.
func (s *Service) queryLocal(ctx context.Context, want map[id.UserID][]id.DeviceID, requester id.UserID) (*QueryResponse, error) {
	resp := newQueryResponse()
	if len(want) == 0 {
		return resp, nil
	}
	users := make([]id.UserID, 0, len(want))
	for u := range want {
		users = append(users, u)
		resp.DeviceKeys[u] = map[id.DeviceID]json.RawMessage{}
	}
	devices, err := s.store.DeviceKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	sigs, err := s.store.Signatures(ctx, users)
	if err != nil {
		return nil, err
	}
	cross, err := s.store.CrossSigningKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	extra := map[id.UserID]map[string][]Signature{} // target user → target key → signatures
	for _, sg := range sigs {
		// Signatures by another user (their user-signing key's, of this
		// user's master key) are for that user's eyes only (spec
		// "Cross-signing": they are visible only to the user who made
		// them).
		if sg.Signer != sg.TargetUser && (requester == "" || sg.Signer != requester) {
			continue
		}
		if extra[sg.TargetUser] == nil {
			extra[sg.TargetUser] = map[string][]Signature{}
		}
		extra[sg.TargetUser][sg.TargetKey] = append(extra[sg.TargetUser][sg.TargetKey], sg)
	}
	for _, dk := range devices {
		if devs := want[dk.User]; len(devs) > 0 && !slices.Contains(devs, dk.Device) {
			continue
		}
		obj, err := canonicaljson.ParseLenient(dk.Keys)
		if err != nil {
			return nil, err
		}
		obj = mergeSignatures(obj, extra[dk.User][string(dk.Device)])
		unsigned := canonicaljson.ObjectValue()
		if dk.DisplayName != "" {
			unsigned = unsigned.With("device_display_name", canonicaljson.StringValue(dk.DisplayName))
		}
		obj = obj.With("unsigned", unsigned)
		resp.DeviceKeys[dk.User][dk.Device] = canonicaljson.Encode(obj)
	}
	for u, byUsage := range cross {
		for usage, raw := range byUsage {
			obj, err := canonicaljson.ParseLenient(raw)
			if err != nil {
				return nil, err
			}
			if pub := crossSigningPublicKey(obj); pub != "" {
				obj = mergeSignatures(obj, extra[u][pub])
			}
			enc := canonicaljson.Encode(obj)
			switch usage {
			case UsageMaster:
				resp.MasterKeys[u] = enc
			case UsageSelfSigning:
				resp.SelfSigningKeys[u] = enc
			case UsageUserSigning:
				if u == requester {
					if resp.UserSigningKeys == nil {
						resp.UserSigningKeys = map[id.UserID]json.RawMessage{}
					}
					resp.UserSigningKeys[u] = enc
				}
			}
		}
	}
	return resp, nil
}

// mergeSignatures adds uploaded signatures to a signed object's own.
func mergeSignatures(obj canonicaljson.Value, sigs []Signature) canonicaljson.Value {
	for _, sg := range sigs {
		if merged, err := signingAdd(obj, sg); err == nil {
			obj = merged
		}
	}
	return obj
}

// queryRemote asks server for its users' keys and merges the answer; a
// failure is recorded, never an error of the whole query.
func (s *Service) queryRemote(ctx context.Context, server id.ServerName, users map[id.UserID][]id.DeviceID, resp *QueryResponse) {
	fail := func(msg string) {
		s.mergeMu.Lock()
		defer s.mergeMu.Unlock()
		resp.Failures[string(server)], _ = json.Marshal(map[string]string{"status": "503", "message": msg})
	}
	rk := s.remoteKeys()
	if rk == nil {
		fail("federation is not available")
		return
	}
	body, _ := json.Marshal(map[string]any{"device_keys": users})
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	raw, err := rk.QueryKeys(ctx, server, body)
	if err != nil {
		s.logger.InfoContext(ctx, "remote key query failed", slog.String("server", string(server)), slog.String("error", err.Error()))
		fail("the server did not answer")
		return
	}
	var remote QueryResponse
	if err := json.Unmarshal(raw, &remote); err != nil {
		fail("the server's answer is malformed")
		return
	}
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	// Only keys of users of that server and of the users asked for count.
	for u, devs := range remote.DeviceKeys {
		if _, asked := users[u]; asked && u.Server() == server {
			resp.DeviceKeys[u] = devs
		}
	}
	for u, k := range remote.MasterKeys {
		if _, asked := users[u]; asked && u.Server() == server {
			resp.MasterKeys[u] = k
		}
	}
	for u, k := range remote.SelfSigningKeys {
		if _, asked := users[u]; asked && u.Server() == server {
			resp.SelfSigningKeys[u] = k
		}
	}
}

// ClaimResponse is the body of POST /keys/claim.
type ClaimResponse struct {
	Failures    map[string]json.RawMessage                               `json:"failures"`
	OneTimeKeys map[id.UserID]map[id.DeviceID]map[string]json.RawMessage `json:"one_time_keys"`
}

// Claim handles POST /keys/claim: per device, its oldest one-time key of
// the algorithm, else its fallback key (spec: /keys/claim). Remote
// devices are claimed through RemoteKeys.
func (s *Service) Claim(ctx context.Context, want map[id.UserID]map[id.DeviceID]string) (*ClaimResponse, error) {
	resp := &ClaimResponse{Failures: map[string]json.RawMessage{},
		OneTimeKeys: map[id.UserID]map[id.DeviceID]map[string]json.RawMessage{}}
	var reqs []ClaimRequest
	remote := map[id.ServerName]map[id.UserID]map[id.DeviceID]string{}
	n := 0
	for u, devs := range want {
		n += len(devs)
		if s.isLocal(u) {
			for d, alg := range devs {
				reqs = append(reqs, ClaimRequest{User: u, Device: d, Algorithm: alg})
			}
			continue
		}
		if _, err := id.ParseUserID(string(u)); err != nil {
			continue
		}
		if remote[u.Server()] == nil {
			remote[u.Server()] = map[id.UserID]map[id.DeviceID]string{}
		}
		remote[u.Server()][u] = devs
	}
	if n > maxQueryUsers {
		return nil, mxerr.TooLarge.WithStatus(400).Msgf("at most %d keys per claim", maxQueryUsers)
	}
	claimed, err := s.store.ClaimKeys(ctx, reqs)
	if err != nil {
		return nil, err
	}
	for _, c := range claimed {
		addClaimed(resp, c.User, c.Device, c.KeyID, c.Key)
	}
	s.eachServer(len(remote), func(add func(func())) {
		for server, users := range remote {
			add(func() { s.claimRemote(ctx, server, users, resp) })
		}
	})
	return resp, nil
}

func addClaimed(resp *ClaimResponse, u id.UserID, d id.DeviceID, keyID string, key json.RawMessage) {
	if resp.OneTimeKeys[u] == nil {
		resp.OneTimeKeys[u] = map[id.DeviceID]map[string]json.RawMessage{}
	}
	if resp.OneTimeKeys[u][d] == nil {
		resp.OneTimeKeys[u][d] = map[string]json.RawMessage{}
	}
	resp.OneTimeKeys[u][d][keyID] = key
}

func (s *Service) claimRemote(ctx context.Context, server id.ServerName, users map[id.UserID]map[id.DeviceID]string, resp *ClaimResponse) {
	fail := func(msg string) {
		s.mergeMu.Lock()
		defer s.mergeMu.Unlock()
		resp.Failures[string(server)], _ = json.Marshal(map[string]string{"status": "503", "message": msg})
	}
	rk := s.remoteKeys()
	if rk == nil {
		fail("federation is not available")
		return
	}
	body, _ := json.Marshal(map[string]any{"one_time_keys": users})
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	raw, err := rk.ClaimKeys(ctx, server, body)
	if err != nil {
		fail("the server did not answer")
		return
	}
	var remote ClaimResponse
	if err := json.Unmarshal(raw, &remote); err != nil {
		fail("the server's answer is malformed")
		return
	}
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	for u, devs := range remote.OneTimeKeys {
		if _, asked := users[u]; !asked || u.Server() != server {
			continue
		}
		for d, keys := range devs {
			for k, v := range keys {
				addClaimed(resp, u, d, k, v)
			}
		}
	}
}
