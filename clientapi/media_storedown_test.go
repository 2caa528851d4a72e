package clientapi_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/storage/miniotest"
)

// MinIO going away in the middle of an upload: the client gets a clear
// error and nothing is recorded as present.
func TestMinIODownDuringUpload(t *testing.T) {
	minio := miniotest.Private(t)
	s3 := minio.Config("media")
	s := apptest.Start(t, func(c *config.Config) {
		c.Media.Backend = config.MediaS3Backend
		c.Media.S3 = config.MediaS3{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket}
	})
	_, token := s.Register(t, "alice", pw)
	kept := upload(t, s, token, "text/plain", "", []byte("stored before"))
	uri, _ := createMXC(t, s, token)

	body, feed := io.Pipe()
	result := make(chan rawResponse, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, s.URL+mediaV3+"/upload/"+mxcPath(uri), body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- rawResponse{}
			return
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		result <- rawResponse{Status: res.StatusCode, Header: res.Header, Body: data}
	}()
	chunk := randomBytes(t, 1<<20)
	if _, err := feed.Write(chunk); err != nil { // returns once the server read it
		t.Fatal(err)
	}
	minio.Kill()
	go func() {
		for i := 0; i < 2; i++ {
			if _, err := feed.Write(chunk); err != nil {
				return // the server gave up reading: fine
			}
		}
		feed.Close()
	}()
	r := <-result
	wantError(t, r, http.StatusServiceUnavailable, "M_UNKNOWN")
	if msg := jsonField(t, r.Body, "error"); msg == "" || msg == "Internal server error" {
		t.Errorf("error message %q does not say what happened", msg)
	}

	d := mediaRequest(t, s, http.MethodGet, mediaV1+"/download/"+mxcPath(uri)+"?timeout_ms=0", token, nil, nil)
	wantError(t, d, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED") // still pending: nothing recorded

	t.Run("a new upload fails the same way", func(t *testing.T) {
		r := mediaRequest(t, s, http.MethodPost, mediaV3+"/upload", token, io.LimitReader(neverEnding{}, 1000), nil)
		wantError(t, r, http.StatusServiceUnavailable, "M_UNKNOWN")
	})
	t.Run("a download of stored media fails clearly", func(t *testing.T) {
		wantError(t, download(t, s, token, kept, nil), http.StatusServiceUnavailable, "M_UNKNOWN")
	})
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
