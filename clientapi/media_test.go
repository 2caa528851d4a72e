package clientapi_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMediaUploadDownload(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend)
		_, token := s.Register(t, "alice", pw)
		_, other := s.Register(t, "bob", pw)
		data := randomBytes(t, 200_000)
		uri := upload(t, s, token, "image/png", "cat%20picture.png", data)

		t.Run("any user downloads the identical bytes with safe headers", func(t *testing.T) {
			r := download(t, s, other, uri, nil)
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, data) {
				t.Fatalf("status %d, %d bytes; want 200 and the %d uploaded", r.Status, len(r.Body), len(data))
			}
			for k, want := range map[string]string{
				"Content-Type":                 "image/png",
				"Content-Disposition":          `inline; filename="cat picture.png"`,
				"X-Content-Type-Options":       "nosniff",
				"Cross-Origin-Resource-Policy": "cross-origin",
			} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
		t.Run("the file name in the path overrides the uploaded one", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri)+"/other.png", token, nil, nil)
			if got := r.Header.Get("Content-Disposition"); got != `inline; filename=other.png` {
				t.Errorf("Content-Disposition %q", got)
			}
		})
		t.Run("a non-ASCII file name is encoded", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri)+"/%C3%A9t%C3%A9.png", token, nil, nil)
			if got := r.Header.Get("Content-Disposition"); got != `inline; filename*=utf-8''%C3%A9t%C3%A9.png` {
				t.Errorf("Content-Disposition %q", got)
			}
		})
		t.Run("HTML is served as an attachment, never inline", func(t *testing.T) {
			page := []byte("<html><script>alert(1)</script></html>")
			htmlURI := upload(t, s, token, "text/html", "", page)
			r := download(t, s, token, htmlURI, nil)
			if got := r.Header.Get("Content-Disposition"); got != "attachment" {
				t.Errorf("Content-Disposition %q, want attachment without a file name", got)
			}
			if got := r.Header.Get("Content-Type"); got != "text/html" {
				t.Errorf("Content-Type %q: the declared type is kept (nosniff, sandbox)", got)
			}
		})
		t.Run("no content type is application/octet-stream", func(t *testing.T) {
			u := upload(t, s, token, "", "", []byte("bytes"))
			r := download(t, s, token, u, nil)
			if got := r.Header.Get("Content-Type"); got != "application/octet-stream" {
				t.Errorf("Content-Type %q", got)
			}
		})
	})
}

func TestMediaRangeRequests(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend)
		_, token := s.Register(t, "alice", pw)
		data := randomBytes(t, 100_000)
		uri := upload(t, s, token, "video/mp4", "", data)
		for _, tc := range []struct {
			name, rng string
			want      []byte
		}{
			{"a middle range", "bytes=1000-1999", data[1000:2000]},
			{"an open-ended range", "bytes=99990-", data[99990:]},
			{"a suffix range", "bytes=-5", data[len(data)-5:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := download(t, s, token, uri, map[string]string{"Range": tc.rng})
				if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, tc.want) {
					t.Fatalf("status %d, %d bytes; want 206 and %d bytes", r.Status, len(r.Body), len(tc.want))
				}
				if cr := r.Header.Get("Content-Range"); !strings.HasSuffix(cr, fmt.Sprintf("/%d", len(data))) {
					t.Errorf("Content-Range %q", cr)
				}
			})
		}
		t.Run("an unsatisfiable range", func(t *testing.T) {
			r := download(t, s, token, uri, map[string]string{"Range": "bytes=200000-"})
			if r.Status != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("status %d, want 416", r.Status)
			}
		})
		t.Run("If-None-Match with the ETag is 304", func(t *testing.T) {
			etag := download(t, s, token, uri, nil).Header.Get("ETag")
			r := download(t, s, token, uri, map[string]string{"If-None-Match": etag})
			if etag == "" || r.Status != http.StatusNotModified {
				t.Errorf("ETag %q, status %d; want 304", etag, r.Status)
			}
		})
	})
}

func TestMediaDeduplication(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend)
		_, alice := s.Register(t, "alice", pw)
		_, bob := s.Register(t, "bob", pw)
		data := randomBytes(t, 50_000)
		u1 := upload(t, s, alice, "application/pdf", "a.pdf", data)
		u2 := upload(t, s, bob, "application/pdf", "b.pdf", data)
		if u1 == u2 {
			t.Fatal("two uploads share one mxc URI")
		}
		r1, r2 := download(t, s, alice, u1, nil), download(t, s, alice, u2, nil)
		if e1, e2 := r1.Header.Get("ETag"), r2.Header.Get("ETag"); e1 == "" || e1 != e2 {
			t.Errorf("ETags (the content address) %q, %q: want one blob for both", e1, e2)
		}
		if !bytes.Contains([]byte(r2.Header.Get("Content-Disposition")), []byte("b.pdf")) {
			t.Errorf("second upload lost its own file name: %q", r2.Header.Get("Content-Disposition"))
		}
	})
}

func TestMediaErrors(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		// other.example resolves to a loopback port nobody listens on, so
		// that its media is asked for over federation without leaving the
		// machine.
		unreachable := apptest.FreeAddr(t)
		s := apptest.Start(t, backend, func(c *config.Config) {
			c.Media.MaxUploadSize = 10_000
			c.Federation.Resolve = map[string]string{"other.example": unreachable}
			c.Federation.AllowPrivateAddresses = true
		})
		_, token := s.Register(t, "alice", pw)
		uri := upload(t, s, token, "text/plain", "", []byte("hello"))

		t.Run("another server's media id is not looked up here", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/other.example/"+mxcPath(uri)[len(apptest.ServerName)+1:], token, nil, nil)
			wantError(t, r, http.StatusBadGateway, "M_UNKNOWN")
		})
		t.Run("unknown media is M_NOT_FOUND", func(t *testing.T) {
			for _, p := range []string{
				apptest.ServerName + "/doesnotexist",
				apptest.ServerName + "/has.dot",
				apptest.ServerName + "/..%2F..%2Fetc%2Fpasswd",
			} {
				r := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+p, token, nil, nil)
				wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
			}
		})
		t.Run("unauthenticated requests are refused", func(t *testing.T) {
			for _, p := range []string{
				mediaV1 + "/download/" + mxcPath(uri),
				mediaV1 + "/thumbnail/" + mxcPath(uri) + "?width=32&height=32",
				mediaV1 + "/config",
				mediaV1 + "/preview_url?url=https://example.org",
			} {
				r := mediaRequest(t, s, http.MethodGet, p, "", nil, nil)
				wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
			}
			r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", "", strings.NewReader("x"), nil)
			wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
		})
		t.Run("legacy unauthenticated download is off", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV3+"/download/"+mxcPath(uri), "", nil, nil)
			wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
		})
		t.Run("too large is M_TOO_LARGE", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", token, bytes.NewReader(randomBytes(t, 10_001)), nil)
			wantError(t, r, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
		})
		t.Run("too large without Content-Length is M_TOO_LARGE", func(t *testing.T) {
			body := struct{ *bytes.Reader }{bytes.NewReader(randomBytes(t, 30_000))} // hides the length: chunked
			r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", token, body, nil)
			wantError(t, r, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
		})
		t.Run("exactly the limit is accepted", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", token, bytes.NewReader(randomBytes(t, 10_000)), nil)
			if r.Status != http.StatusOK {
				t.Errorf("status %d %s", r.Status, r.Body)
			}
		})
		t.Run("bad content types and file names are M_INVALID_PARAM", func(t *testing.T) {
			for _, ct := range []string{"not a type", "text/", "/plain", "text/plain; charset"} {
				r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", token, strings.NewReader("x"), map[string]string{"Content-Type": ct})
				wantError(t, r, http.StatusBadRequest, "M_INVALID_PARAM")
			}
			r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload?filename=a%0Ab", token, strings.NewReader("x"), nil)
			wantError(t, r, http.StatusBadRequest, "M_INVALID_PARAM")
		})
		t.Run("config announces the upload size", func(t *testing.T) {
			for _, p := range []string{mediaV1 + "/config", mediaV3 + "/config"} {
				res := s.Do(t, http.MethodGet, p, token, nil)
				if got, _ := res.Body["m.upload.size"].(float64); res.Status != http.StatusOK || got != 10_000 {
					t.Errorf("%s: %d %s", p, res.Status, res.Raw)
				}
			}
		})
	})
}

func TestLegacyUnauthenticatedMedia(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Media.LegacyUnauthenticated = true })
	_, token := s.Register(t, "alice", pw)
	data := []byte("old client")
	uri := upload(t, s, token, "text/plain", "", data)
	r := mediaRequest(t, s, http.MethodGet, mediaV3+"/download/"+mxcPath(uri), "", nil, nil)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, data) {
		t.Errorf("legacy download with the switch on: %d %q", r.Status, r.Body)
	}
	if r.Header.Get("Content-Security-Policy") == "" {
		t.Error("legacy download lacks the safe headers")
	}
	// Other servers' media is never fetched for the deprecated endpoints.
	r = mediaRequest(t, s, http.MethodGet, mediaV3+"/download/elsewhere.test/abcdef", "", nil, nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("legacy download of remote media: %d %q", r.Status, r.Body)
	}
}
