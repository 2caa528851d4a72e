package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// registrar creates the tool's accounts: through user-interactive auth on
// POST /register (m.login.dummy, with m.login.registration_token when a
// token is given), or with shared-secret registration
// (/_synapse/admin/v1/register, which Synapse and Parley implement) when a
// secret is given, which works even with registration closed.
type registrar struct {
	c            *client
	sharedSecret string
	regToken     string
	password     string
	prefix       string // unique per run, so that runs never collide
	concurrency  int
	filter       map[string]any // the sync filter uploaded for every user
	next         atomic.Int64
}

// registerMany registers n users, concurrently, and uploads their sync
// filter.
func (r *registrar) registerMany(ctx context.Context, role string, n int) ([]*user, error) {
	users := make([]*user, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	work := make(chan int)
	for range max(1, min(r.concurrency, n)) {
		wg.Go(func() {
			for i := range work {
				u, err := r.register(ctx, role)
				if err == nil {
					err = r.c.uploadFilter(ctx, u, r.filter)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					continue
				}
				users[i] = u
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return users, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// register creates one account named prefix_role_N.
func (r *registrar) register(ctx context.Context, role string) (*user, error) {
	localpart := fmt.Sprintf("%s_%s%d", r.prefix, role, r.next.Add(1))
	var (
		u   *user
		err error
	)
	if r.sharedSecret != "" {
		u, err = r.registerSharedSecret(ctx, localpart)
	} else {
		u, err = r.registerUIA(ctx, localpart)
	}
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	if u.Token == "" {
		return nil, fmt.Errorf("register %s: no access token in the answer", localpart)
	}
	return u, nil
}

// uiaAnswer is the 401 body of user-interactive auth (spec: Client-Server
// API, "User-Interactive Authentication API").
type uiaAnswer struct {
	Session   string   `json:"session"`
	Completed []string `json:"completed"`
	Flows     []struct {
		Stages []string `json:"stages"`
	} `json:"flows"`
}

// stagesWeCanDo are the registration stages the tool completes on its own.
func (r *registrar) canDo(stage string) bool {
	switch stage {
	case "m.login.dummy":
		return true
	case "m.login.registration_token":
		return r.regToken != ""
	}
	return false
}

// registerUIA registers through POST /register: the first request
// without auth returns the flows and a session, then the stages of the
// first flow the tool can complete are done in order.
func (r *registrar) registerUIA(ctx context.Context, localpart string) (*user, error) {
	body := map[string]any{
		"username":                    localpart,
		"initial_device_display_name": "parley-bench",
	}
	if r.password != "" {
		body["password"] = r.password
	}
	const path = "/_matrix/client/v3/register"
	var u user
	err := r.c.do(ctx, http.MethodPost, path, "", body, &u)
	for range 5 {
		var me *matrixError
		if err == nil || !errors.As(err, &me) || me.Status != http.StatusUnauthorized {
			break
		}
		var a uiaAnswer
		if jerr := json.Unmarshal(me.raw, &a); jerr != nil || a.Session == "" {
			return nil, err
		}
		stage := ""
		for _, f := range a.Flows {
			if !slices.ContainsFunc(f.Stages, func(s string) bool { return !r.canDo(s) }) {
				for _, s := range f.Stages {
					if !slices.Contains(a.Completed, s) {
						stage = s
						break
					}
				}
				break
			}
		}
		if stage == "" {
			return nil, fmt.Errorf("no registration flow the tool can complete (give -shared-secret or -registration-token): %w", err)
		}
		auth := map[string]any{"type": stage, "session": a.Session}
		if stage == "m.login.registration_token" {
			auth["token"] = r.regToken
		}
		body["auth"] = auth
		err = r.c.do(ctx, http.MethodPost, path, "", body, &u)
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// registerSharedSecret registers with GET then POST
// /_synapse/admin/v1/register: a nonce, then the HMAC-SHA1 of
// nonce NUL username NUL password NUL "notadmin" keyed with the secret.
func (r *registrar) registerSharedSecret(ctx context.Context, localpart string) (*user, error) {
	const path = "/_synapse/admin/v1/register"
	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := r.c.do(ctx, http.MethodGet, path, "", nil, &n); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	m := hmac.New(sha1.New, []byte(r.sharedSecret))
	m.Write([]byte(n.Nonce + "\x00" + localpart + "\x00" + r.password + "\x00notadmin"))
	body := map[string]any{
		"nonce":    n.Nonce,
		"username": localpart,
		"password": r.password,
		"admin":    false,
		"mac":      hex.EncodeToString(m.Sum(nil)),
	}
	var u user
	if err := r.c.do(ctx, http.MethodPost, path, "", body, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
