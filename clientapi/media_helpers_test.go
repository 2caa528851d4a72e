package clientapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/storage/miniotest"
)

const (
	mediaV3 = "/_matrix/media/v3"
	mediaV1 = "/_matrix/client/v1/media"
)

// benchBackend is backends for benchmarks: the configuration of one
// backend by name.
func benchBackend(tb testing.TB, name string) func(*config.Config) {
	if name == config.MediaFilesystem {
		return func(c *config.Config) { c.Media.Backend = config.MediaFilesystem }
	}
	s3 := miniotest.Config(tb)
	return func(c *config.Config) {
		c.Media.Backend = config.MediaS3Backend
		c.Media.S3 = config.MediaS3{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket}
	}
}

// backends runs a media test once per blob store: the filesystem and a
// real MinIO (a bucket of its own on the test server).
func backends(t *testing.T, test func(t *testing.T, useBackend func(*config.Config))) {
	t.Run("filesystem", func(t *testing.T) {
		t.Parallel()
		test(t, func(c *config.Config) { c.Media.Backend = config.MediaFilesystem })
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		test(t, benchBackend(t, config.MediaS3Backend))
	})
}

// rawResponse is a response whose body is not JSON.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// mediaRequest sends a request with a raw body and headers.
func mediaRequest(t *testing.T, s *apptest.Server, method, path, token string, body io.Reader, header map[string]string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: res.StatusCode, Header: res.Header, Body: data}
}

// upload posts content and returns the mxc:// URI.
func upload(t *testing.T, s *apptest.Server, token, contentType, filename string, data []byte) string {
	t.Helper()
	path := mediaV3 + "/upload"
	if filename != "" {
		path += "?filename=" + filename
	}
	r := mediaRequest(t, s, http.MethodPost, path, token, bytes.NewReader(data), map[string]string{"Content-Type": contentType})
	if r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	uri := jsonField(t, r.Body, "content_uri")
	if !strings.HasPrefix(uri, "mxc://"+apptest.ServerName+"/") {
		t.Fatalf("content_uri %q", uri)
	}
	return uri
}

// mxcPath turns mxc://server/id into server/id.
func mxcPath(uri string) string { return strings.TrimPrefix(uri, "mxc://") }

// download GETs the authenticated download of an mxc URI.
func download(t *testing.T, s *apptest.Server, token, uri string, header map[string]string) rawResponse {
	t.Helper()
	return mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri), token, nil, header)
}

// jsonField reads a string field of a JSON body.
func jsonField(t testing.TB, body []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	v, _ := m[key].(string)
	return v
}

// errcode is the errcode of a JSON error body.
func errcode(t *testing.T, r rawResponse) string {
	t.Helper()
	return jsonField(t, r.Body, "errcode")
}

// wantError fails unless r is the Matrix error status/errcode.
func wantError(t *testing.T, r rawResponse, status int, code string) {
	t.Helper()
	if r.Status != status || errcode(t, r) != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}
