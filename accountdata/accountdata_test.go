package accountdata

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

type memStore struct {
	pos  int64
	data map[string]json.RawMessage
}

func (m *memStore) PutAccountData(_ context.Context, u id.UserID, r id.RoomID, typ string, c json.RawMessage) (int64, error) {
	m.pos++
	m.data[string(u)+"|"+string(r)+"|"+typ] = c
	return m.pos, nil
}

func (m *memStore) AccountData(_ context.Context, u id.UserID, r id.RoomID, typ string) (json.RawMessage, error) {
	c, ok := m.data[string(u)+"|"+string(r)+"|"+typ]
	if !ok {
		return nil, ErrNotFound
	}
	return c, nil
}

type notes []syncer.Change

func (n *notes) Notify(c syncer.Change) { *n = append(*n, c) }

func TestPut(t *testing.T) {
	ctx := context.Background()
	alice := id.UserID("@alice:hs")
	for _, c := range []struct {
		name, typ, content string
		want               *mxerr.Error
	}{
		{"custom type", "org.example", `{"a":1}`, nil},
		{"fully read is the server's", TypeFullyRead, `{"event_id":"$e"}`, mxerr.BadJSON},
		{"push rules are the server's", TypePushRules, `{}`, mxerr.BadJSON},
		{"empty type", "", `{}`, mxerr.InvalidParam},
		{"not an object", "org.example", `[1]`, mxerr.BadJSON},
		{"ignore list of user ids", TypeIgnoredUsers, `{"ignored_users":{"@bob:hs":{}}}`, nil},
		{"ignore list with a non-user", TypeIgnoredUsers, `{"ignored_users":{"bob":{}}}`, mxerr.BadJSON},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n notes
			s := New(&memStore{data: map[string]json.RawMessage{}}, &n)
			err := s.Put(ctx, alice, "", c.typ, json.RawMessage(c.content))
			if c.want == nil {
				if err != nil || len(n) != 1 || n[0].Stream != syncer.StreamAccountData || n[0].Users[0] != alice {
					t.Fatalf("err %v, changes %+v", err, n)
				}
				return
			}
			if !errors.Is(err, c.want) || len(n) != 0 {
				t.Fatalf("err %v, want %s; %d changes", err, c.want.Code, len(n))
			}
		})
	}
}

func TestIgnoredAndTags(t *testing.T) {
	ctx := context.Background()
	alice, room := id.UserID("@alice:hs"), id.RoomID("!r:hs")
	var n notes
	s := New(&memStore{data: map[string]json.RawMessage{}}, &n)
	t.Run("no list ignores nobody", func(t *testing.T) {
		if ig, err := s.Ignored(ctx, alice); err != nil || len(ig) != 0 {
			t.Fatalf("ignored %v, %v", ig, err)
		}
	})
	t.Run("the list is read back", func(t *testing.T) {
		if err := s.Put(ctx, alice, "", TypeIgnoredUsers, json.RawMessage(`{"ignored_users":{"@bob:hs":{}}}`)); err != nil {
			t.Fatal(err)
		}
		if ig, _ := s.Ignored(ctx, alice); !ig["@bob:hs"] || len(ig) != 1 {
			t.Fatalf("ignored %v", ig)
		}
	})
	t.Run("tags add and remove", func(t *testing.T) {
		if err := s.PutTag(ctx, alice, room, "u.a", json.RawMessage(`{"order":1}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutTag(ctx, alice, room, "u.b", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTag(ctx, alice, room, "u.a"); err != nil {
			t.Fatal(err)
		}
		tags, _ := s.Tags(ctx, alice, room)
		if _, ok := tags["u.b"]; !ok || len(tags) != 1 {
			t.Fatalf("tags %v", tags)
		}
		if err := s.PutTag(ctx, alice, room, "", json.RawMessage(`{}`)); !errors.Is(err, mxerr.InvalidParam) {
			t.Fatalf("empty tag: %v", err)
		}
	})
}
