package clientapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/media/mediatest"
)

func previewURL(t *testing.T, s *apptest.Server, token, target string) rawResponse {
	t.Helper()
	return mediaRequest(t, s, http.MethodGet, mediaV1+"/preview_url?url="+url.QueryEscape(target), token, nil, nil)
}

// site is a web page with OpenGraph tags and its image; hits counts the
// requests for the page.
func site(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	img := mediatest.PNG(t, 120, 60)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			hits.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<html><head><title>Ignored</title>
<meta property="og:title" content="A page">
<meta property="og:description" content="About things">
<meta property="og:image" content="/img.png">
</head><body>text</body></html>`)
		case "/img.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(img)
		case "/huge":
			w.Header().Set("Content-Type", "image/png")
			w.Write(bytes.Repeat([]byte("x"), 20_000))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPreviewURL(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend, func(c *config.Config) {
			c.Media.Preview.Enabled = true
			c.Media.Preview.AllowPrivateAddresses = true // the test site is on loopback
			c.Media.Preview.MaxBytes = 10_000
		})
		_, token := s.Register(t, "alice", pw)
		var hits atomic.Int64
		web := site(t, &hits)

		r := previewURL(t, s, token, web.URL+"/page")
		if r.Status != http.StatusOK {
			t.Fatalf("preview: %d %s", r.Status, r.Body)
		}
		for k, want := range map[string]string{"og:title": "A page", "og:description": "About things", "og:image:type": "image/png"} {
			if got := jsonField(t, r.Body, k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		imageURI := jsonField(t, r.Body, "og:image")
		if !strings.HasPrefix(imageURI, "mxc://"+apptest.ServerName+"/") {
			t.Fatalf("og:image %q is not local media", imageURI)
		}
		if d := download(t, s, token, imageURI, nil); d.Status != http.StatusOK || d.Header.Get("Content-Type") != "image/png" {
			t.Errorf("og:image download: %d %s", d.Status, d.Header.Get("Content-Type"))
		}
		if !bytes.Contains(r.Body, []byte(`"og:image:width":120`)) || !bytes.Contains(r.Body, []byte(`"matrix:image:size":`)) {
			t.Errorf("image dimensions or size missing: %s", r.Body)
		}

		t.Run("cached", func(t *testing.T) {
			before := hits.Load()
			again := previewURL(t, s, token, web.URL+"/page")
			if again.Status != http.StatusOK || jsonField(t, again.Body, "og:title") != "A page" {
				t.Fatalf("second preview: %d %s", again.Status, again.Body)
			}
			if hits.Load() != before {
				t.Error("the page was fetched again within the cache time")
			}
		})
		t.Run("an image URL", func(t *testing.T) {
			r := previewURL(t, s, token, web.URL+"/img.png")
			if r.Status != http.StatusOK || !strings.HasPrefix(jsonField(t, r.Body, "og:image"), "mxc://") {
				t.Errorf("image preview: %d %s", r.Status, r.Body)
			}
		})
		t.Run("larger than max_bytes is not stored", func(t *testing.T) {
			r := previewURL(t, s, token, web.URL+"/huge")
			if r.Status != http.StatusBadGateway {
				t.Errorf("status %d %s, want 502", r.Status, r.Body)
			}
		})
		t.Run("not an http URL", func(t *testing.T) {
			for _, u := range []string{"file:///etc/passwd", "gopher://x/", "not a url", "http://"} {
				wantError(t, previewURL(t, s, token, u), http.StatusBadRequest, "M_INVALID_PARAM")
			}
		})
		t.Run("missing url", func(t *testing.T) {
			r := mediaRequest(t, s, http.MethodGet, mediaV1+"/preview_url", token, nil, nil)
			wantError(t, r, http.StatusBadRequest, "M_MISSING_PARAM")
		})
	})
}

// With the default allow_private_addresses: false, nothing private is
// fetched, whatever the URL looks like.
func TestPreviewURLRefusesPrivateAddresses(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Media.Preview.Enabled = true })
	_, token := s.Register(t, "alice", pw)
	var hits atomic.Int64
	web := site(t, &hits)
	port := web.URL[strings.LastIndex(web.URL, ":"):]
	for _, target := range []string{
		web.URL + "/page",                        // 127.0.0.1
		"http://localhost" + port + "/page",      // a name resolving to loopback
		"http://[::1]" + port + "/page",          // IPv6 loopback
		"http://[::ffff:127.0.0.1]" + port + "/", // IPv4-mapped
		"http://0.0.0.0" + port + "/page",        // unspecified: reaches the local host
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
		"http://192.168.0.1/",
	} {
		t.Run(target, func(t *testing.T) {
			wantError(t, previewURL(t, s, token, target), http.StatusForbidden, "M_FORBIDDEN")
		})
	}
	// 127.0.0.1 written as one number: Go's resolver takes it for a name
	// (no such host), never for the address; either way nothing is fetched.
	if r := previewURL(t, s, token, "http://2130706433"+port+"/page"); r.Status == http.StatusOK {
		t.Errorf("numeric host previewed: %s", r.Body)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback site was fetched %d times", n)
	}
}

func TestPreviewURLDisabled(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	wantError(t, previewURL(t, s, token, "https://example.org/"), http.StatusForbidden, "M_FORBIDDEN")
}
