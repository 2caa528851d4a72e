package media

import (
	"testing"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"AQwafuaFswefuhsfAFAgsw", true},
		{"a_b-c09", true},
		{"", false},
		{"../etc/passwd", false},
		{"has.dot", false},
		{"sp ace", false},
		{"%2e%2e", false},
		{"é", false},
		{string(make([]byte, 256)), false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if _, err := ParseID(tc.in); (err == nil) != tc.ok {
				t.Errorf("ParseID(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
	if id := NewID(); len(id) != 24 {
		t.Errorf("NewID() = %q", id)
	} else if _, err := ParseID(string(id)); err != nil {
		t.Errorf("NewID() is not a valid id: %v", err)
	}
}

func TestParseMXC(t *testing.T) {
	m, err := ParseMXC("mxc://example.org:8448/abc_DEF")
	if err != nil || m.Server != "example.org:8448" || m.MediaID != "abc_DEF" || m.String() != "mxc://example.org:8448/abc_DEF" {
		t.Errorf("ParseMXC = %+v, %v", m, err)
	}
	for _, bad := range []string{"http://x/y", "mxc://x", "mxc://bad server/y", "mxc://x/y/z"} {
		if _, err := ParseMXC(bad); err == nil {
			t.Errorf("ParseMXC(%q) accepted", bad)
		}
	}
}

func TestParseThumbnailSizes(t *testing.T) {
	got, err := ParseThumbnailSizes(" 32x32-crop, 800x600-scale ,")
	if err != nil || len(got) != 2 || got[0] != (ThumbnailSize{32, 32, MethodCrop}) || got[1] != (ThumbnailSize{800, 600, MethodScale}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"32x32", "32-crop", "0x5-crop", "axb-scale", "32x32-stretch", "5000x5-crop"} {
		if _, err := ParseThumbnailSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTargetSize(t *testing.T) {
	for _, tc := range []struct {
		name         string
		w, h         int
		want         ThumbnailSize
		wantW, wantH int
	}{
		{"scale landscape into a box", 1000, 800, ThumbnailSize{320, 240, MethodScale}, 300, 240},
		{"scale wide image", 2000, 500, ThumbnailSize{320, 240, MethodScale}, 320, 80},
		{"scale never upscales", 100, 50, ThumbnailSize{320, 240, MethodScale}, 100, 50},
		{"crop exact", 1000, 800, ThumbnailSize{96, 96, MethodCrop}, 96, 96},
		{"crop of a smaller original keeps the aspect", 50, 200, ThumbnailSize{96, 96, MethodCrop}, 50, 50},
		{"crop wider than the original", 100, 1000, ThumbnailSize{400, 100, MethodCrop}, 100, 25},
		{"scale of a 1-pixel line", 10000, 1, ThumbnailSize{32, 32, MethodScale}, 32, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, h := targetSize(tc.w, tc.h, tc.want)
			if w != tc.wantW || h != tc.wantH {
				t.Errorf("targetSize(%d, %d, %v) = %dx%d, want %dx%d", tc.w, tc.h, tc.want, w, h, tc.wantW, tc.wantH)
			}
		})
	}
}

func TestNormalizeContentType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "application/octet-stream"},
		{"IMAGE/PNG", "image/png"},
		{"text/plain; charset=UTF-8", "text/plain; charset=UTF-8"},
		{"text/plain;charset=utf-8", "text/plain; charset=utf-8"},
	} {
		if got, err := normalizeContentType(tc.in); err != nil || got != tc.want {
			t.Errorf("normalizeContentType(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
