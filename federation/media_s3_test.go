package federation_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/storage/miniotest"
)

// TestRemoteMediaFromAnS3Store: hs1 keeps its media in MinIO and answers
// its own clients' large downloads with a presigned URL; to another server
// it sends the content itself (a presigned URL would lose the content
// type), which hs2 stores and serves to bob with its type.
func TestRemoteMediaFromAnS3Store(t *testing.T) {
	s3 := miniotest.Config(t)
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		if c.ServerName != "hs1.test" {
			return
		}
		c.Media.Backend = config.MediaS3Backend
		c.Media.S3 = config.MediaS3{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket,
			PresignedRedirect: 1000}
	})
	hs1, hs2 := servers[0], servers[1]
	_, aliceTok := hs1.Register(t, "alice", password)
	_, bobTok := hs2.Register(t, "bob", password)
	big := make([]byte, 5000)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	srvName, mediaID := upload(t, hs1, aliceTok, "application/zip", big)
	path := "/_matrix/client/v1/media/download/" + srvName + "/" + mediaID
	// hs1's own clients are redirected: the presigned URL is in use.
	req, _ := http.NewRequest(http.MethodGet, hs1.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceTok)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("hs1's own download: %d, want a redirect", res.StatusCode)
	}
	status, ct, body := getRaw(t, hs2, path, bobTok)
	if status != http.StatusOK || ct != "application/zip" || !bytes.Equal(body, big) {
		t.Fatalf("remote download through the location: %d %s, %d bytes", status, ct, len(body))
	}
}
