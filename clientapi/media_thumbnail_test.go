package clientapi_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/media/mediatest"
)

func thumbnail(t *testing.T, s *apptest.Server, token, uri, query string) rawResponse {
	t.Helper()
	return mediaRequest(t, s, http.MethodGet, mediaV1+"/thumbnail/"+mxcPath(uri)+"?"+query, token, nil, nil)
}

// decoded checks a thumbnail response and returns its format and size.
func decoded(t *testing.T, r rawResponse) (format string, w, h int) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("thumbnail: %d %s", r.Status, r.Body)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	if want := "image/" + format; r.Header.Get("Content-Type") != want {
		t.Errorf("Content-Type %q for a %s image", r.Header.Get("Content-Type"), format)
	}
	if d := r.Header.Get("Content-Disposition"); len(d) < 6 || d[:6] != "inline" {
		t.Errorf("Content-Disposition %q, want inline", d)
	}
	return format, cfg.Width, cfg.Height
}

func TestThumbnails(t *testing.T) {
	backends(t, func(t *testing.T, backend func(*config.Config)) {
		s := apptest.Start(t, backend)
		_, token := s.Register(t, "alice", pw)
		pngURI := upload(t, s, token, "image/png", "", mediatest.PNG(t, 1000, 800))
		jpegURI := upload(t, s, token, "image/jpeg", "", mediatest.JPEG(t, 1000, 800))
		gifURI := upload(t, s, token, "image/gif", "", mediatest.GIF(t, 400, 300, 1))
		webpURI := upload(t, s, token, "image/webp", "", mediatest.WebP(600, 400, color.NRGBA{R: 200, G: 10, B: 10, A: 255}))

		for _, tc := range []struct {
			name, uri, query, format string
			w, h                     int
		}{
			// Configured sizes: the smallest at least as large as asked.
			{"png crop 32x32", pngURI, "width=32&height=32&method=crop", "png", 32, 32},
			{"png crop 50x50 gets 96x96", pngURI, "width=50&height=50&method=crop", "png", 96, 96},
			{"png scale 320x240 keeps the aspect", pngURI, "width=320&height=240&method=scale", "png", 300, 240},
			{"png scale 100x100 gets the 320x240 size", pngURI, "width=100&height=100", "png", 300, 240},
			{"png scale 640x480", pngURI, "width=640&height=480&method=scale", "png", 600, 480},
			// No configured size is large enough: exactly the asked size.
			{"png scale 900x900 made on demand", pngURI, "width=900&height=900&method=scale", "png", 900, 720},
			{"png crop 500x100 made on demand", pngURI, "width=500&height=100&method=crop", "png", 500, 100},
			{"jpeg stays jpeg", jpegURI, "width=96&height=96&method=crop", "jpeg", 96, 96},
			{"gif first frame as png", gifURI, "width=96&height=96&method=crop", "png", 96, 96},
			{"webp as png", webpURI, "width=320&height=240&method=scale", "png", 320, 213},
		} {
			t.Run(tc.name, func(t *testing.T) {
				format, w, h := decoded(t, thumbnail(t, s, token, tc.uri, tc.query))
				if format != tc.format || w != tc.w || h != tc.h {
					t.Errorf("got %s %dx%d, want %s %dx%d", format, w, h, tc.format, tc.w, tc.h)
				}
				// The second request is served from the store, identical.
				again := thumbnail(t, s, token, tc.uri, tc.query)
				first := thumbnail(t, s, token, tc.uri, tc.query)
				if !bytes.Equal(again.Body, first.Body) {
					t.Error("a repeated thumbnail request gave different bytes")
				}
			})
		}
		t.Run("an image smaller than asked is served as is", func(t *testing.T) {
			small := mediatest.PNG(t, 20, 10)
			uri := upload(t, s, token, "image/png", "", small)
			r := thumbnail(t, s, token, uri, "width=96&height=96&method=crop")
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, small) {
				t.Errorf("status %d, %d bytes; want the original %d bytes", r.Status, len(r.Body), len(small))
			}
		})
		t.Run("animated GIF", func(t *testing.T) {
			uri := upload(t, s, token, "image/gif", "", mediatest.GIF(t, 200, 200, 3))
			r := thumbnail(t, s, token, uri, "width=32&height=32&method=crop&animated=true")
			if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/gif" {
				t.Fatalf("animated=true: %d %s", r.Status, r.Header.Get("Content-Type"))
			}
			anim, err := gif.DecodeAll(bytes.NewReader(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			if len(anim.Image) != 3 || anim.Config.Width != 32 || anim.Config.Height != 32 {
				t.Errorf("animated thumbnail: %d frames of %dx%d, want 3 of 32x32", len(anim.Image), anim.Config.Width, anim.Config.Height)
			}
			format, w, h := decoded(t, thumbnail(t, s, token, uri, "width=32&height=32&method=crop&animated=false"))
			if format != "png" || w != 32 || h != 32 {
				t.Errorf("animated=false: %s %dx%d, want a static 32x32 png", format, w, h)
			}
		})
		t.Run("a decompression bomb is refused from its header", func(t *testing.T) {
			uri := upload(t, s, token, "image/png", "", mediatest.BombPNG(100_000, 100_000))
			start := time.Now()
			r := thumbnail(t, s, token, uri, "width=32&height=32")
			wantError(t, r, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing took %v: the pixels were decoded", d)
			}
		})
		t.Run("what cannot be thumbnailed is a 400", func(t *testing.T) {
			for name, tc := range map[string]struct{ ct, body string }{
				"text":           {"text/plain", "hello"},
				"broken png":     {"image/png", "not a png at all"},
				"svg (scripted)": {"image/svg+xml", "<svg/>"},
			} {
				uri := upload(t, s, token, tc.ct, "", []byte(tc.body))
				r := thumbnail(t, s, token, uri, "width=32&height=32")
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s: status %d %s, want 400", name, r.Status, r.Body)
				}
			}
		})
		t.Run("bad parameters", func(t *testing.T) {
			for _, tc := range []struct{ query, code string }{
				{"height=32", "M_MISSING_PARAM"},
				{"width=32", "M_MISSING_PARAM"},
				{"width=0&height=32", "M_INVALID_PARAM"},
				{"width=-5&height=32", "M_INVALID_PARAM"},
				{"width=abc&height=32", "M_INVALID_PARAM"},
				{"width=32&height=32&method=stretch", "M_INVALID_PARAM"},
				{"width=32&height=32&animated=maybe", "M_INVALID_PARAM"},
			} {
				t.Run(tc.query, func(t *testing.T) {
					wantError(t, thumbnail(t, s, token, pngURI, tc.query), http.StatusBadRequest, tc.code)
				})
			}
		})
		t.Run("unknown media", func(t *testing.T) {
			r := thumbnail(t, s, token, "mxc://"+apptest.ServerName+"/nothing", "width=32&height=32")
			wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
		})
	})
}

func TestDynamicThumbnails(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Media.Thumbnails.Dynamic = true })
	_, token := s.Register(t, "alice", pw)
	uri := upload(t, s, token, "image/png", "", mediatest.PNG(t, 1000, 800))
	for _, tc := range []struct{ w, h int }{{50, 50}, {70, 40}} {
		_, w, h := decoded(t, thumbnail(t, s, token, uri, fmt.Sprintf("width=%d&height=%d&method=crop", tc.w, tc.h)))
		if w != tc.w || h != tc.h {
			t.Errorf("dynamic crop %dx%d gave %dx%d", tc.w, tc.h, w, h)
		}
	}
}
