package fedclient

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
)

func TestQueryCalls(t *testing.T) {
	ca := fedtest.NewCA(t)
	var uri string
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri = r.RequestURI
		switch {
		case r.URL.Path == "/_matrix/federation/v1/query/profile" && r.URL.Query().Get("user_id") == "@huge:hs2.test":
			_, _ = w.Write([]byte(`{"displayname":"` + strings.Repeat("x", 200<<10) + `"}`))
		case r.URL.Path == "/_matrix/federation/v1/query/profile" && r.URL.Query().Get("user_id") == "@list:hs2.test":
			_, _ = w.Write([]byte(`["not a profile"]`))
		case r.URL.Path == "/_matrix/federation/v1/query/profile":
			_, _ = w.Write([]byte(`{"displayname":"Alice"}`))
		case r.URL.Path == "/_matrix/federation/v1/query/directory":
			_, _ = w.Write([]byte(`{"room_id":"!r:hs2.test","servers":["hs2.test","hs3.test"]}`))
		case r.URL.Path == "/_matrix/federation/v1/publicRooms":
			_, _ = w.Write([]byte(`{"chunk":[],"total_room_count_estimate":0}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND"}`))
		}
	}), "hs2.test")
	c, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	ctx := context.Background()
	p, err := c.QueryProfile(ctx, "@alice:hs2.test", "displayname")
	if err != nil || string(p["displayname"]) != `"Alice"` || uri != "/_matrix/federation/v1/query/profile?field=displayname&user_id=%40alice%3Ahs2.test" {
		t.Errorf("QueryProfile: %v, %v, sent %s", p, err, uri)
	}
	if _, err := c.QueryProfile(ctx, "@huge:hs2.test", ""); err == nil {
		t.Error("a profile answer over 128 KiB was accepted")
	}
	if _, err := c.QueryProfile(ctx, "@list:hs2.test", ""); err == nil {
		t.Error("a profile answer that is not an object was accepted")
	}
	d, err := c.QueryDirectory(ctx, "#a:hs2.test")
	if err != nil || d.RoomID != "!r:hs2.test" || len(d.Servers) != 2 || uri != "/_matrix/federation/v1/query/directory?room_alias=%23a%3Ahs2.test" {
		t.Errorf("QueryDirectory: %+v, %v, sent %s", d, err, uri)
	}
	var page map[string]any
	if err := c.PublicRooms(ctx, "hs2.test", PublicRoomsRequest{Limit: 5, Since: "n!x"}, &page); err != nil ||
		uri != "/_matrix/federation/v1/publicRooms?limit=5&since=n%21x" {
		t.Errorf("PublicRooms GET: %v, sent %s", err, uri)
	}
	if err := c.PublicRooms(ctx, "hs2.test", PublicRoomsRequest{Filter: &PublicRoomsFilter{GenericSearchTerm: "x"}}, &page); err != nil ||
		uri != "/_matrix/federation/v1/publicRooms" {
		t.Errorf("PublicRooms POST: %v, sent %s", err, uri)
	}
}
