package clientapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// With media.s3.presigned_redirect, large downloads redirect to the bucket
// after the access check; small ones are still streamed.
func TestPresignedRedirect(t *testing.T) {
	s := apptest.Start(t, benchBackend(t, config.MediaS3Backend), func(c *config.Config) {
		c.Media.S3.PresignedRedirect = 1000
	})
	_, token := s.Register(t, "alice", pw)
	big := randomBytes(t, 5000)
	uri := upload(t, s, token, "application/zip", "", big)

	r := download(t, s, token, uri, nil)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("status %d Location %q; want 307 to a presigned URL", r.Status, loc)
	}
	res, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Equal(got, big) {
		t.Errorf("presigned URL served %d, %d bytes", res.StatusCode, len(got))
	}

	small := upload(t, s, token, "text/plain", "", []byte("small"))
	if r := download(t, s, token, small, nil); r.Status != http.StatusOK || string(r.Body) != "small" {
		t.Errorf("small download: %d %q", r.Status, r.Body)
	}
	// The access check still comes first.
	if r := download(t, s, "", uri, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d, want 401", r.Status)
	}
}
