package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

var mediaSeq atomic.Int64

// newMediaUser is a user id of its own: media rows only reference users by
// name, so no account is needed.
func newMediaUser() id.UserID {
	return id.UserID(fmt.Sprintf("@media%d_%d:parley.test", time.Now().UnixNano(), mediaSeq.Add(1)))
}

func uploaded(user id.UserID, size int64) media.Media {
	now := time.Now()
	return media.Media{
		MXC:      media.MXC{Server: "parley.test", MediaID: media.NewID()},
		Uploader: user, ContentType: "text/plain", Size: size,
		Blob:      "0000000000000000000000000000000000000000000000000000000000000000",
		CreatedAt: now, UploadedAt: now,
	}
}

func TestMediaRecordAndGet(t *testing.T) {
	st := storage.NewMedia(pgtest.NewPool(t))
	ctx := context.Background()
	m := uploaded(newMediaUser(), 42)
	m.Filename = "a.txt"
	if err := st.Record(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, m.MXC)
	if err != nil {
		t.Fatal(err)
	}
	if got.Uploader != m.Uploader || got.Size != 42 || got.Filename != "a.txt" || got.Blob != m.Blob || got.Pending() {
		t.Errorf("got %+v", got)
	}
	if err := st.Record(ctx, m, 0); !errors.Is(err, media.ErrExists) {
		t.Errorf("second Record of one id = %v, want ErrExists", err)
	}
	if _, err := st.Get(ctx, media.MXC{Server: "parley.test", MediaID: "nope"}); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("Get unknown = %v", err)
	}
}

// Concurrent uploads of one user cannot together exceed the quota: the
// check and the insert are atomic per user.
func TestMediaQuotaIsAtomic(t *testing.T) {
	st := storage.NewMedia(pgtest.NewPool(t))
	user := newMediaUser()
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch err := st.Record(context.Background(), uploaded(user, 300), 1000); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, media.ErrQuotaExceeded):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 3 || refused.Load() != 7 {
		t.Errorf("%d recorded, %d refused; want 3 and 7 (3 × 300 ≤ 1000)", ok.Load(), refused.Load())
	}
	if used, err := st.UsedBytes(context.Background(), user); err != nil || used != 900 {
		t.Errorf("UsedBytes = %d, %v; want 900", used, err)
	}
}

func TestMediaPending(t *testing.T) {
	st := storage.NewMedia(pgtest.NewPool(t))
	ctx := context.Background()
	user := newMediaUser()
	now := time.Now()
	pending := func(expires time.Time) media.Media {
		return media.Media{MXC: media.MXC{Server: "parley.test", MediaID: media.NewID()}, Uploader: user, CreatedAt: now, ExpiresAt: expires}
	}
	live := pending(now.Add(time.Hour))
	expired := pending(now.Add(-time.Second))
	for _, m := range []media.Media{live, expired} {
		if err := st.CreatePending(ctx, m, 2); err != nil {
			t.Fatal(err)
		}
	}
	// The expired one does not count against the limit of 2.
	if err := st.CreatePending(ctx, pending(now.Add(time.Hour)), 2); err != nil {
		t.Errorf("second live pending: %v", err)
	}
	if err := st.CreatePending(ctx, pending(now.Add(time.Hour)), 2); !errors.Is(err, media.ErrTooManyPending) {
		t.Errorf("third live pending = %v, want ErrTooManyPending", err)
	}

	done := uploaded(user, 5)
	for _, tc := range []struct {
		name string
		m    media.Media
		want error
	}{
		{"another user", func() media.Media { m := done; m.MXC = live.MXC; m.Uploader = newMediaUser(); return m }(), media.ErrNotOwner},
		{"expired", func() media.Media { m := done; m.MXC = expired.MXC; return m }(), media.ErrNotFound},
		{"unknown", func() media.Media { m := done; m.MXC.MediaID = "unknown"; return m }(), media.ErrNotFound},
		{"the creator", func() media.Media { m := done; m.MXC = live.MXC; return m }(), nil},
		{"twice", func() media.Media { m := done; m.MXC = live.MXC; return m }(), media.ErrAlreadyUploaded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.CompletePending(ctx, tc.m, 0); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Errorf("CompletePending = %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := st.Get(ctx, live.MXC); err != nil || got.Pending() || got.Size != 5 || !got.ExpiresAt.IsZero() {
		t.Errorf("completed media %+v, %v", got, err)
	}
	n, err := st.DeleteExpiredPending(ctx, now)
	if err != nil || n < 1 {
		t.Errorf("DeleteExpiredPending = %d, %v", n, err)
	}
	if _, err := st.Get(ctx, expired.MXC); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("expired id still there: %v", err)
	}
	if _, err := st.Get(ctx, live.MXC); err != nil {
		t.Errorf("uploaded media deleted: %v", err)
	}
}

func TestMediaThumbnailsAndPreviews(t *testing.T) {
	st := storage.NewMedia(pgtest.NewPool(t))
	ctx := context.Background()
	m := uploaded(newMediaUser(), 10)
	if err := st.Record(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	th := media.Thumbnail{MXC: m.MXC, For: media.ThumbnailSize{Width: 32, Height: 32, Method: "crop"},
		ContentType: "image/png", Size: 7, Blob: m.Blob, CreatedAt: time.Now()}
	for i := 0; i < 2; i++ { // the second is ignored
		if err := st.PutThumbnail(ctx, th); err != nil {
			t.Fatal(err)
		}
	}
	ths, err := st.Thumbnails(ctx, m.MXC)
	if err != nil || len(ths) != 1 || ths[0].For != th.For || ths[0].ContentType != "image/png" {
		t.Errorf("Thumbnails = %+v, %v", ths, err)
	}

	url := fmt.Sprintf("https://example.org/%d", mediaSeq.Add(1))
	old := time.Now().Add(-2 * time.Hour)
	if err := st.PutPreview(ctx, url, []byte(`{"og:title":"old"}`), old); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.Preview(ctx, url, time.Now().Add(-time.Hour)); err != nil || found {
		t.Errorf("a preview older than notBefore was found (%v)", err)
	}
	if err := st.PutPreview(ctx, url, []byte(`{"og:title":"new"}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	og, found, err := st.Preview(ctx, url, time.Now().Add(-time.Hour))
	if err != nil || !found || string(og) != `{"og:title": "new"}` {
		t.Errorf("Preview = %s, %v, %v", og, found, err)
	}
}
