package clientapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// createMXC calls POST /_matrix/media/v1/create.
func createMXC(t *testing.T, s *apptest.Server, token string) (uri string, expires int64) {
	t.Helper()
	res := s.Do(t, http.MethodPost, "/_matrix/media/v1/create", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	exp, _ := res.Body["unused_expires_at"].(float64)
	return res.String("content_uri"), int64(exp)
}

func putMedia(t *testing.T, s *apptest.Server, token, uri string, body io.Reader) rawResponse {
	t.Helper()
	return mediaRequest(t, s, http.MethodPut, mediaV3+"/upload/"+mxcPath(uri), token, body, map[string]string{"Content-Type": "text/plain"})
}

func TestAsyncUpload(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend)
		_, alice := s.Register(t, "alice", pw)
		_, bob := s.Register(t, "bob", pw)

		before := time.Now()
		uri, expires := createMXC(t, s, alice)
		if want := before.Add(24 * time.Hour).UnixMilli(); expires < want-60_000 || expires > want+60_000 {
			t.Errorf("unused_expires_at %d, want about %d (24 hours)", expires, want)
		}
		t.Run("before the upload a download is M_NOT_YET_UPLOADED", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri)+"?timeout_ms=0", alice, nil, nil)
			wantError(t, r, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")
		})
		t.Run("another user may not upload to it", func(t *testing.T) {
			wantError(t, putMedia(t, s, bob, uri, strings.NewReader("bob's")), http.StatusForbidden, "M_FORBIDDEN")
		})
		t.Run("the creator uploads, everyone downloads", func(t *testing.T) {
			r := putMedia(t, s, alice, uri, strings.NewReader("async content"))
			if r.Status != http.StatusOK || string(r.Body) != "{}" {
				t.Fatalf("PUT: %d %s", r.Status, r.Body)
			}
			d := download(t, s, bob, uri, nil)
			if d.Status != http.StatusOK || string(d.Body) != "async content" {
				t.Errorf("download: %d %q", d.Status, d.Body)
			}
		})
		t.Run("a second upload is M_CANNOT_OVERWRITE_MEDIA", func(t *testing.T) {
			wantError(t, putMedia(t, s, alice, uri, strings.NewReader("again")), http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA")
		})
		t.Run("a media id never created is M_NOT_FOUND", func(t *testing.T) {
			wantError(t, putMedia(t, s, alice, "mxc://"+apptest.ServerName+"/nevercreated", strings.NewReader("x")), http.StatusNotFound, "M_NOT_FOUND")
		})
		t.Run("a waiting download gets the content once it arrives", func(t *testing.T) {
			uri2, _ := createMXC(t, s, alice)
			got := make(chan rawResponse, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodGet, s.URL+mediaV1+"/download/"+mxcPath(uri2)+"?timeout_ms=30000", nil)
				req.Header.Set("Authorization", "Bearer "+alice)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					got <- rawResponse{}
					return
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				got <- rawResponse{Status: res.StatusCode, Body: body}
			}()
			if r := putMedia(t, s, alice, uri2, strings.NewReader("late")); r.Status != http.StatusOK {
				t.Fatalf("PUT: %d %s", r.Status, r.Body)
			}
			if r := <-got; r.Status != http.StatusOK || string(r.Body) != "late" {
				t.Errorf("waiting download: %d %q", r.Status, r.Body)
			}
		})
	})
}

func TestAsyncUploadLimits(t *testing.T) {
	t.Run("pending uploads per user are limited", func(t *testing.T) {
		s := apptest.Start(t, func(c *config.Config) { c.Media.MaxPendingUploads = 2 })
		_, alice := s.Register(t, "alice", pw)
		_, bob := s.Register(t, "bob", pw)
		first, _ := createMXC(t, s, alice)
		createMXC(t, s, alice)
		res := s.Do(t, http.MethodPost, "/_matrix/media/v1/create", alice, nil)
		if res.Status != http.StatusTooManyRequests || res.Errcode() != "M_LIMIT_EXCEEDED" {
			t.Errorf("third create: %d %s", res.Status, res.Raw)
		}
		createMXC(t, s, bob) // another user's limit is separate
		if r := putMedia(t, s, alice, first, strings.NewReader("done")); r.Status != http.StatusOK {
			t.Fatalf("PUT: %d %s", r.Status, r.Body)
		}
		createMXC(t, s, alice) // an upload frees a slot
	})
	t.Run("an expired media id is M_NOT_FOUND", func(t *testing.T) {
		s := apptest.Start(t, func(c *config.Config) { c.Media.UnusedExpiry = time.Millisecond })
		_, alice := s.Register(t, "alice", pw)
		uri, expires := createMXC(t, s, alice)
		for time.Now().UnixMilli() <= expires {
			time.Sleep(time.Millisecond) // the server's clock must pass the expiry, not a race
		}
		wantError(t, putMedia(t, s, alice, uri, strings.NewReader("too late")), http.StatusNotFound, "M_NOT_FOUND")
		r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri), alice, nil, nil)
		wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
	})
}

func TestMediaQuota(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend, func(c *config.Config) { c.Media.UserQuota = 1000 })
		_, alice := s.Register(t, "alice", pw)
		_, bob := s.Register(t, "bob", pw)
		upload(t, s, alice, "text/plain", "", randomBytes(t, 600))
		r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", alice, bytes.NewReader(randomBytes(t, 600)), nil)
		wantError(t, r, http.StatusForbidden, "M_FORBIDDEN")
		chunked := struct{ io.Reader }{bytes.NewReader(randomBytes(t, 600))}
		r = mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", alice, chunked, nil)
		wantError(t, r, http.StatusForbidden, "M_FORBIDDEN")
		upload(t, s, alice, "text/plain", "", randomBytes(t, 400)) // exactly fills it
		upload(t, s, bob, "text/plain", "", randomBytes(t, 900))   // quotas are per user

		uri, _ := createMXC(t, s, alice)
		wantError(t, putMedia(t, s, alice, uri, strings.NewReader("x")), http.StatusForbidden, "M_FORBIDDEN")
	})
}

// sendTruncated sends an upload that declares more bytes than it sends,
// then hangs up: what a client losing its connection looks like.
func sendTruncated(t *testing.T, s *apptest.Server, method, path, token string, declared, sent int) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		method, path, token, declared)
	if _, err := conn.Write(randomBytes(t, sent)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	// The server answers (or closes) once it has seen the body end early.
	_, _ = io.ReadAll(conn)
}

func TestTruncatedUploadLeavesNothing(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend, func(c *config.Config) { c.Media.UserQuota = 100_000 })
		_, alice := s.Register(t, "alice", pw)
		uri, _ := createMXC(t, s, alice)
		sendTruncated(t, s, http.MethodPut, mediaV3+"/upload/"+mxcPath(uri), alice, 90_000, 40_000)
		r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri)+"?timeout_ms=0", alice, nil, nil)
		wantError(t, r, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")

		sendTruncated(t, s, http.MethodPost, mediaV3+"/upload", alice, 90_000, 40_000)
		// Nothing counted against the quota: a full 90 kB still fits after
		// the two cut-off ones, once into the created id.
		if r := putMedia(t, s, alice, uri, bytes.NewReader(randomBytes(t, 90_000))); r.Status != http.StatusOK {
			t.Fatalf("complete upload after truncated ones: %d %s", r.Status, r.Body)
		}
	})
}
