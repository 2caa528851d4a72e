package fedclient

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
)

// writeMultipart answers a federation media request: the JSON metadata,
// then a part with headers and body.
func writeMultipart(w http.ResponseWriter, header textproto.MIMEHeader, body string) {
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	meta, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	_, _ = meta.Write([]byte(`{}`))
	p, _ := mw.CreatePart(header)
	_, _ = p.Write([]byte(body))
	_ = mw.Close()
}

func TestDownloadMedia(t *testing.T) {
	ca := fedtest.NewCA(t)
	// The Location of a redirect: a plain HTTP server (private addresses
	// are allowed in this test).
	blobs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blob" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("from the location"))
	}))
	t.Cleanup(blobs.Close)
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_matrix/federation/v1/media/download/inline":
			if r.Header.Get("Authorization") == "" {
				t.Error("federation media request not signed")
			}
			writeMultipart(w, textproto.MIMEHeader{"Content-Type": {"text/plain"},
				"Content-Disposition": {`inline; filename="a.txt"`}}, "hello media")
		case "/_matrix/federation/v1/media/download/redirect":
			writeMultipart(w, textproto.MIMEHeader{"Location": {blobs.URL + "/blob"}}, "")
		case "/_matrix/federation/v1/media/download/gone":
			writeMultipart(w, textproto.MIMEHeader{"Location": {blobs.URL + "/missing"}}, "")
		case "/_matrix/federation/v1/media/download/notmultipart":
			_, _ = w.Write([]byte("plain"))
		case "/_matrix/media/v3/download/hs2.test/legacy":
			if r.URL.Query().Get("allow_remote") != "false" || r.Header.Get("Authorization") != "" {
				t.Errorf("legacy fallback %s with Authorization %q", r.URL.RawQuery, r.Header.Get("Authorization"))
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("legacy content"))
		case "/_matrix/federation/v1/media/download/legacy":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"Not found"}`))
		}
	}), "hs2.test")
	c, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	ctx := context.Background()
	for _, tc := range []struct {
		media, contentType, body string
		errcode                  string
	}{
		{media: "inline", contentType: "text/plain", body: "hello media"},
		{media: "redirect", contentType: "image/png", body: "from the location"},
		{media: "legacy", contentType: "text/plain", body: "legacy content"},
		{media: "unknown", errcode: "M_NOT_FOUND"},
		{media: "gone", errcode: "M_NOT_FOUND"},
		{media: "notmultipart", errcode: "-"},
	} {
		t.Run(tc.media, func(t *testing.T) {
			res, err := c.DownloadMedia(ctx, "hs2.test", tc.media, time.Second)
			if tc.errcode != "" {
				if err == nil {
					res.Body.Close()
					t.Fatal("no error")
				}
				if tc.errcode != "-" && !IsErrcode(err, tc.errcode) {
					t.Fatalf("err %v, want %s", err, tc.errcode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.body || res.ContentType != tc.contentType {
				t.Fatalf("got %q as %q", b, res.ContentType)
			}
		})
	}
	// Without private addresses allowed, an http:// location is refused.
	strict, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = false
	})
	if _, err := strict.fetchLocation(ctx, blobs.URL+"/blob"); err == nil {
		t.Error("plain http location fetched with private addresses refused")
	}
	var fe *Error
	if _, err := strict.DownloadMedia(ctx, "hs2.test", "inline", time.Second); err == nil || errors.As(err, &fe) {
		t.Errorf("loopback server reached with private addresses refused: %v", err)
	}
}

// FuzzParseMultipartMedia: whatever another server answers, parsing ends
// with content, a location or an error, and never panics.
func FuzzParseMultipartMedia(f *testing.F) {
	f.Add("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n")
	f.Add("multipart/mixed; boundary=b", "--b\r\n\r\n{}\r\n--b\r\nLocation: https://example.org/x\r\n\r\n\r\n--b--\r\n")
	f.Add("multipart/mixed; boundary=\"a b\"", "--a b\r\n\r\n--a b--")
	f.Add("text/plain", "hello")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		res, location, err := parseMultipartMedia(contentType, strings.NewReader(body))
		switch {
		case err != nil:
			if res != nil || location != "" {
				t.Fatal("an error with a result")
			}
		case location != "":
			if res != nil {
				t.Fatal("both a location and content")
			}
		default:
			if res == nil {
				t.Fatal("no error, no location, no content")
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		}
	})
}
