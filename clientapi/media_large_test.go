package clientapi_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

const hundredMB = 100 << 20

// patternReader yields n pseudo-random bytes without holding them: the
// client side of the test must not be what uses memory.
type patternReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}

// heapPeak samples the live heap while it runs; Stop returns the peak
// above the baseline taken at start.
type heapPeak struct {
	base, peak uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{base: heapNow(), stop: make(chan struct{})}
	h.peak = h.base
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if v := heapNow(); v > h.peak {
					h.peak = v
				}
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak - h.base
}

// roundTrip100MB uploads 100 MB and downloads it again, checking the bytes
// by their SHA-256, and returns the peak heap growth of the process
// (server and client) during each half.
func roundTrip100MB(t testing.TB, s *apptest.Server, token string, seed byte) (upPeak, downPeak uint64) {
	t.Helper()
	want := sha256.New()
	if _, err := io.Copy(want, newPattern(seed, hundredMB)); err != nil {
		t.Fatal(err)
	}
	h := startHeapPeak()
	req, _ := http.NewRequest(http.MethodPost, s.URL+mediaV3+"/upload?filename=big.bin", newPattern(seed, hundredMB))
	req.ContentLength = hundredMB
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	upPeak = h.Stop()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", res.StatusCode, body)
	}
	uri := jsonField(t, body, "content_uri")

	h = startHeapPeak()
	req, _ = http.NewRequest(http.MethodGet, s.URL+mediaV1+"/download/"+mxcPath(uri), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, res.Body)
	res.Body.Close()
	downPeak = h.Stop()
	if err != nil || res.StatusCode != http.StatusOK || n != hundredMB {
		t.Fatalf("download: status %d, %d bytes, %v", res.StatusCode, n, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the 100 MB download differs from the upload")
	}
	return upPeak, downPeak
}

// maxHeapGrowth is what a 100 MB round trip may add to the heap: one S3
// part (8 MiB) with copies in flight and HTTP buffers, far below the file.
const maxHeapGrowth = 48 << 20

// 100 MB up and down, byte-identical, with the heap bounded far below the
// file's size: the file is streamed, never held.
// The backends run one after the other (not in parallel as elsewhere):
// the heap measured is the whole process's.
func TestMedia100MBStreams(t *testing.T) {
	for _, backend := range []string{config.MediaFilesystem, config.MediaS3Backend} {
		t.Run(backend, func(t *testing.T) {
			s := apptest.Start(t, benchBackend(t, backend))
			_, token := s.Register(t, "alice", pw)
			up, down := roundTrip100MB(t, s, token, 1)
			t.Logf("peak heap growth: upload %.1f MiB, download %.1f MiB", float64(up)/(1<<20), float64(down)/(1<<20))
			if up > maxHeapGrowth || down > maxHeapGrowth {
				t.Errorf("heap grew by %d (upload) and %d (download) bytes, limit %d", up, down, maxHeapGrowth)
			}
		})
	}
}

// BenchmarkMedia100MB measures a 100 MB upload and download per backend:
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench Media100MB -benchtime 3x ./clientapi
func BenchmarkMedia100MB(b *testing.B) {
	for _, backend := range []string{config.MediaFilesystem, config.MediaS3Backend} {
		b.Run(backend, func(b *testing.B) {
			s := apptest.Start(b, benchBackend(b, backend))
			_, token := s.Register(b, "bench", pw)
			b.SetBytes(2 * hundredMB)
			var up, down uint64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				u, d := roundTrip100MB(b, s, token, byte(i))
				up, down = max(up, u), max(down, d)
			}
			b.ReportMetric(float64(up)/(1<<20), "MiB-heap-upload")
			b.ReportMetric(float64(down)/(1<<20), "MiB-heap-download")
		})
	}
}
