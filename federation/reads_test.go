package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/media/mediatest"
	"github.com/parleyhq/parley/rooms/signing"
)

// Reads between servers over real TLS (apptest.StartFederation): what
// hs2 asks of hs1 for itself (queries, directory, media, devices) and for
// its clients (remote profiles, aliases, directories, media), and the room
// graph reads, which need hs2 in the room.

const (
	v3       = "/_matrix/client/v3"
	password = "correct horse battery staple"
)

// clientAs is a federation client that signs as srv, with srv's own key
// and configuration.
func clientAs(t *testing.T, srv *apptest.Server) *fedclient.Client {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(srv.Config.DataDir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw))
	if len(f) != 3 {
		t.Fatalf("signing key file %q", raw)
	}
	key, err := signing.ParseSeed(f[0]+":"+f[1], f[2])
	if err != nil {
		t.Fatal(err)
	}
	c, err := fedclient.New(fedclient.Config{ServerName: srv.Config.ServerName, Key: key, Federation: srv.Config.Federation},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upload puts content into srv's media repository and returns its mxc.
func upload(t *testing.T, srv *apptest.Server, token, contentType string, content []byte) (serverName, mediaID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/_matrix/media/v3/upload?filename=pic.png", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %v", res.StatusCode, err)
	}
	rest, ok := strings.CutPrefix(body.ContentURI, "mxc://")
	if !ok {
		t.Fatalf("content_uri %q", body.ContentURI)
	}
	serverName, mediaID, _ = strings.Cut(rest, "/")
	return serverName, mediaID
}

// getRaw GETs a client API path and returns status, content type and body.
func getRaw(t *testing.T, srv *apptest.Server, path, token string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

func TestQueriesAcrossServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	alice, aliceTok := hs1.Register(t, "alice", password)
	_, bobTok := hs2.Register(t, "bob", password)
	apptest.MustStatus(t, hs1.Do(t, http.MethodPut, v3+"/profile/"+url.PathEscape(alice)+"/displayname", aliceTok,
		map[string]string{"displayname": "Alice of hs1"}), http.StatusOK)
	res := hs1.Do(t, http.MethodPost, v3+"/createRoom", aliceTok, map[string]any{
		"preset": "public_chat", "visibility": "public", "room_alias_name": "lobby", "name": "The lobby"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	alias := "#lobby:" + string(hs1.Config.ServerName)

	t.Run("profile of a remote user", func(t *testing.T) {
		res := hs2.Do(t, http.MethodGet, v3+"/profile/"+url.PathEscape(alice), bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("displayname") != "Alice of hs1" {
			t.Fatalf("remote profile %s", res.Raw)
		}
		res = hs2.Do(t, http.MethodGet, v3+"/profile/"+url.PathEscape(alice)+"/displayname", bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("displayname") != "Alice of hs1" {
			t.Fatalf("remote profile field %s", res.Raw)
		}
		res = hs2.Do(t, http.MethodGet, v3+"/profile/"+url.PathEscape("@nobody:"+string(hs1.Config.ServerName)), bobTok, nil)
		if res.Status != http.StatusNotFound || res.Errcode() != "M_NOT_FOUND" {
			t.Fatalf("unknown remote user: %d %s", res.Status, res.Raw)
		}
	})

	t.Run("query/profile served", func(t *testing.T) {
		c := clientAs(t, hs2)
		p, err := c.QueryProfile(ctx, id.UserID(alice), "displayname")
		if err != nil {
			t.Fatal(err)
		}
		if string(p["displayname"]) != `"Alice of hs1"` || len(p) != 1 {
			t.Fatalf("query/profile field = %s", p)
		}
		var fe *fedclient.Error
		if _, err := c.QueryProfile(ctx, id.UserID(alice), "no.such.field"); !errors.As(err, &fe) || fe.Errcode != "M_NOT_FOUND" {
			t.Fatalf("unknown field: %v", err)
		}
	})

	t.Run("remote alias", func(t *testing.T) {
		res := hs2.Do(t, http.MethodGet, v3+"/directory/room/"+url.PathEscape(alias), bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("room_id") != room {
			t.Fatalf("remote alias resolved to %s", res.Raw)
		}
		servers, _ := res.Body["servers"].([]any)
		if len(servers) == 0 || servers[0] != string(hs1.Config.ServerName) {
			t.Fatalf("servers %v", servers)
		}
		res = hs2.Do(t, http.MethodGet, v3+"/directory/room/"+url.PathEscape("#nope:"+string(hs1.Config.ServerName)), bobTok, nil)
		if res.Status != http.StatusNotFound {
			t.Fatalf("unknown remote alias: %d %s", res.Status, res.Raw)
		}
	})

	t.Run("remote room directory", func(t *testing.T) {
		res := hs2.Do(t, http.MethodGet, v3+"/publicRooms?server="+string(hs1.Config.ServerName), bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		chunk, _ := res.Body["chunk"].([]any)
		if len(chunk) != 1 || chunk[0].(map[string]any)["room_id"] != room || chunk[0].(map[string]any)["name"] != "The lobby" {
			t.Fatalf("remote directory %s", res.Raw)
		}
		res = hs2.Do(t, http.MethodPost, v3+"/publicRooms?server="+string(hs1.Config.ServerName), bobTok,
			map[string]any{"filter": map[string]any{"generic_search_term": "no such room"}})
		apptest.MustStatus(t, res, http.StatusOK)
		if chunk, _ := res.Body["chunk"].([]any); len(chunk) != 0 {
			t.Fatalf("filtered remote directory %s", res.Raw)
		}
	})

	t.Run("remote media", func(t *testing.T) {
		png := mediatest.PNG(t, 80, 60)
		srvName, mediaID := upload(t, hs1, aliceTok, "image/png", png)
		path := "/_matrix/client/v1/media/download/" + srvName + "/" + mediaID
		status, ct, body := getRaw(t, hs2, path, bobTok)
		if status != http.StatusOK || ct != "image/png" || !bytes.Equal(body, png) {
			t.Fatalf("remote download: %d %s, %d bytes", status, ct, len(body))
		}
		status, ct, _ = getRaw(t, hs2, "/_matrix/client/v1/media/thumbnail/"+srvName+"/"+mediaID+"?width=16&height=16", bobTok)
		if status != http.StatusOK || !strings.HasPrefix(ct, "image/") {
			t.Fatalf("remote thumbnail: %d %s", status, ct)
		}
		status, _, _ = getRaw(t, hs2, "/_matrix/client/v1/media/download/"+srvName+"/unknownmedia", bobTok)
		if status != http.StatusNotFound {
			t.Fatalf("unknown remote media: %d", status)
		}
		// Cached: hs2 serves it with hs1 gone.
		hs1.Stop(t)
		status, _, body = getRaw(t, hs2, path, bobTok)
		if status != http.StatusOK || !bytes.Equal(body, png) {
			t.Fatalf("cached remote download with hs1 down: %d", status)
		}
	})
}

func TestFederationMediaIsMultipart(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	_, aliceTok := hs1.Register(t, "alice", password)
	content := []byte("plain text content")
	_, mediaID := upload(t, hs1, aliceTok, "text/plain", content)
	c := clientAs(t, hs2)
	res, err := c.DownloadMedia(context.Background(), hs1.Config.ServerName, mediaID, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) || res.ContentType != "text/plain" || !strings.Contains(res.ContentDisposition, "pic.png") {
		t.Fatalf("got %q as %q (%q)", got, res.ContentType, res.ContentDisposition)
	}
	if _, err := c.DownloadMedia(context.Background(), hs1.Config.ServerName, "nosuchmedia", time.Second); fedclient.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("unknown media: %v", err)
	}

	// A thumbnail: the same multipart answer with an image part.
	_, picID := upload(t, hs1, aliceTok, "image/png", mediatest.PNG(t, 64, 64))
	thumb, err := c.DoRaw(context.Background(), hs1.Config.ServerName, http.MethodGet,
		"/_matrix/federation/v1/media/thumbnail/"+picID+"?width=16&height=16&method=scale", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer thumb.Body.Close()
	mediaType, params, err := mime.ParseMediaType(thumb.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("thumbnail answer is %q", thumb.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(thumb.Body, params["boundary"])
	if meta, err := mr.NextPart(); err != nil || meta.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata part: %v", err)
	}
	part, err := mr.NextPart()
	if err != nil || !strings.HasPrefix(part.Header.Get("Content-Type"), "image/") {
		t.Fatalf("thumbnail part: %v %v", err, part.Header)
	}
	if img, err := io.ReadAll(part); err != nil || len(img) == 0 {
		t.Fatalf("thumbnail bytes: %d, %v", len(img), err)
	}
	err = c.Do(context.Background(), hs1.Config.ServerName, http.MethodGet,
		"/_matrix/federation/v1/media/thumbnail/"+picID+"?width=16", nil, nil)
	if !fedclient.IsErrcode(err, "M_MISSING_PARAM") {
		t.Fatalf("thumbnail without height: %v", err)
	}
}

// TestDevicesAcrossServers: hs2 lists alice's devices on hs1, and bob's
// /keys/query for alice reaches hs1 (no failures for hs1).
func TestDevicesAcrossServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	alice, aliceTok := hs1.Register(t, "alice", password)
	_, bobTok := hs2.Register(t, "bob", password)
	res := hs1.Do(t, http.MethodGet, v3+"/devices", aliceTok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	devs, _ := res.Body["devices"].([]any)
	if len(devs) != 1 {
		t.Fatalf("alice's devices %s", res.Raw)
	}
	device := devs[0].(map[string]any)["device_id"].(string)

	raw, err := clientAs(t, hs2).UserDevices(context.Background(), id.UserID(alice))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		UserID  id.UserID `json:"user_id"`
		Devices []struct {
			DeviceID string `json:"device_id"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.UserID != id.UserID(alice) || len(body.Devices) != 1 || body.Devices[0].DeviceID != device {
		t.Fatalf("user/devices %s", raw)
	}
	if _, err := clientAs(t, hs2).UserDevices(context.Background(), "@someone:elsewhere.test"); err == nil {
		t.Fatal("user/devices answered for a user of another server")
	}

	res = hs2.Do(t, http.MethodPost, v3+"/keys/query", bobTok, map[string]any{"device_keys": map[string]any{alice: []string{}}})
	apptest.MustStatus(t, res, http.StatusOK)
	if failures, _ := res.Body["failures"].(map[string]any); len(failures) != 0 {
		t.Fatalf("keys/query failures %s", res.Raw)
	}
}
