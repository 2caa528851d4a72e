package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/media/mediatest"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// fakeMediaServer stands for another server's content repository (outside the
// system under test): it counts fetches and can hold them until released.
type fakeMediaServer struct {
	content map[media.ID][]byte
	types   map[media.ID]string
	fetches atomic.Int32
	hold    chan struct{}
}

func (f *fakeMediaServer) FetchMedia(ctx context.Context, mxc media.MXC, maxSize int64) (*media.RemoteContent, error) {
	f.fetches.Add(1)
	if f.hold != nil {
		<-f.hold
	}
	if mxc.MediaID == "broken" {
		return nil, errors.New("dial tcp: connection refused")
	}
	b, ok := f.content[mxc.MediaID]
	if !ok {
		return nil, media.ErrNotFound
	}
	return &media.RemoteContent{ContentType: f.types[mxc.MediaID], Filename: "remote.bin", Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func newRemoteMediaService(t *testing.T, remote *fakeMediaServer, maxUpload int64) *media.Service {
	t.Helper()
	blobs, err := media.NewFSStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	meta := storage.NewMedia(pgtest.NewPool(t))
	svc, err := media.New(media.Config{
		ServerName: "parley.test", MaxUploadSize: maxUpload, MaxPendingUploads: 10,
		UnusedExpiry: time.Hour, MaxImagePixels: 1 << 24, DynamicThumbnails: true,
	}, media.Stores{Metadata: meta, Thumbnails: meta, Previews: meta, Blobs: blobs}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	svc.SetRemote(remote)
	return svc
}

func TestRemoteMediaFetchedOnceAndCached(t *testing.T) {
	ctx := context.Background()
	png := mediatest.PNG(t, 64, 48)
	remote := &fakeMediaServer{
		content: map[media.ID][]byte{"pic": png, "big": bytes.Repeat([]byte("x"), 2048), "odd": []byte("hi")},
		types:   map[media.ID]string{"pic": "image/png", "big": "application/octet-stream", "odd": "not a type"},
		hold:    make(chan struct{}),
	}
	svc := newRemoteMediaService(t, remote, 1024)
	pic := media.MXC{Server: "remote.test", MediaID: "pic"}

	// Concurrent downloads of one uncached media share one fetch.
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := svc.Download(ctx, pic, 0)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(c.Body)
				c.Body.Close()
				if err == nil && !bytes.Equal(got, png) {
					err = errors.New("content differs")
				}
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for remote.fetches.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(remote.hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := remote.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for concurrent downloads, want 1", n)
	}
	// Cached: the next download and a thumbnail do not fetch again.
	c, err := svc.Download(ctx, pic, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Body.Close()
	if c.ContentType != "image/png" || c.Filename != "remote.bin" || c.Size != int64(len(png)) || c.Uploader != "" {
		t.Errorf("cached media %+v", c.Media)
	}
	th, err := svc.Thumbnail(ctx, pic, media.ThumbnailRequest{Width: 16, Height: 16}, 0)
	if err != nil {
		t.Fatal(err)
	}
	th.Body.Close()
	if n := remote.fetches.Load(); n != 1 {
		t.Errorf("%d fetches after cached reads, want 1", n)
	}

	for _, tc := range []struct {
		name string
		mxc  media.MXC
		want error
	}{
		{"unknown on the remote", media.MXC{Server: "remote.test", MediaID: "nope"}, media.ErrNotFound},
		{"larger than the upload limit", media.MXC{Server: "remote.test", MediaID: "big"}, media.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.Download(ctx, tc.mxc, 0); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err := svc.Download(ctx, tc.mxc, 0); !errors.Is(err, tc.want) {
				t.Fatalf("second try: err %v, want %v", err, tc.want)
			}
		})
	}
	// A server that cannot be reached is a 502 for the client.
	_, err = svc.Download(ctx, media.MXC{Server: "remote.test", MediaID: "broken"}, 0)
	if m, ok := mxerr.As(err); !ok || m.Status != http.StatusBadGateway {
		t.Errorf("unreachable remote: %v, want a 502", err)
	}
	// A content type that does not parse is stored as the default.
	c, err = svc.Download(ctx, media.MXC{Server: "remote.test", MediaID: "odd"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Body.Close()
	if !strings.HasPrefix(c.ContentType, "application/octet-stream") {
		t.Errorf("content type %q", c.ContentType)
	}
}
