// Package accountdata owns a user's account data (spec client-server-api
// "Client Config"): global and per-room entries, room tags ("Room
// Tagging", stored as the room entry m.tag) and the ignored users list
// ("Ignoring Users"). Every change gets a position in the account data
// stream and wakes the user's syncs.
//
// It is a domain package: no edge, no storage, no driver.
package accountdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// ErrNotFound: no account data of that type.
var ErrNotFound = errors.New("account data not found")

// Store persists account data.
type Store interface {
	// PutAccountData stores content under (user, room, type), room "" for
	// global data, and returns the change's stream position.
	PutAccountData(ctx context.Context, user id.UserID, room id.RoomID, typ string, content json.RawMessage) (int64, error)
	// AccountData returns the stored content, ErrNotFound when none.
	AccountData(ctx context.Context, user id.UserID, room id.RoomID, typ string) (json.RawMessage, error)
}

// Notifier is told of every change so that the user's syncs wake.
type Notifier interface {
	Notify(c syncer.Change)
}

// Service reads and writes account data.
type Service struct {
	store    Store
	notifier Notifier
}

// New returns the service.
func New(store Store, notifier Notifier) *Service {
	return &Service{store: store, notifier: notifier}
}

// Types the server controls (spec: PUT account_data answers 405
// M_BAD_JSON for them): the read marker has its own endpoint, push rules
// theirs.
const (
	TypeFullyRead    = "m.fully_read"
	TypePushRules    = "m.push_rules"
	TypeTag          = "m.tag"
	TypeIgnoredUsers = "m.ignored_user_list"
)

// errServerControlled is the 405 the spec gives for those types.
var errServerControlled = mxerr.BadJSON.WithStatus(http.StatusMethodNotAllowed)

// Get returns one entry (room "" for global data).
func (s *Service) Get(ctx context.Context, user id.UserID, room id.RoomID, typ string) (json.RawMessage, error) {
	return s.store.AccountData(ctx, user, room, typ)
}

// Put stores one entry on the client's behalf: an object, of a type that
// clients may set.
func (s *Service) Put(ctx context.Context, user id.UserID, room id.RoomID, typ string, content json.RawMessage) error {
	switch {
	case typ == "":
		return mxerr.InvalidParam.Msg("type must not be empty")
	case typ == TypeFullyRead || typ == TypePushRules:
		return errServerControlled.Msg("Cannot set " + typ + " through this API.")
	}
	content = bytes.TrimSpace(content)
	if len(content) == 0 || content[0] != '{' {
		return mxerr.BadJSON.Msg("account data must be a JSON object")
	}
	if typ == TypeIgnoredUsers && room == "" {
		if _, err := parseIgnored(content); err != nil {
			return err
		}
	}
	return s.put(ctx, user, room, typ, content)
}

// SetFullyRead stores the room's m.fully_read marker (the receipts
// endpoint and /read_markers set it; spec "Fully read markers").
func (s *Service) SetFullyRead(ctx context.Context, user id.UserID, room id.RoomID, event id.EventID) error {
	content, err := json.Marshal(map[string]id.EventID{"event_id": event})
	if err != nil {
		return err
	}
	return s.put(ctx, user, room, TypeFullyRead, content)
}

func (s *Service) put(ctx context.Context, user id.UserID, room id.RoomID, typ string, content json.RawMessage) error {
	pos, err := s.store.PutAccountData(ctx, user, room, typ, content)
	if err != nil {
		return err
	}
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamAccountData, Pos: pos, Users: []id.UserID{user}})
	return nil
}
