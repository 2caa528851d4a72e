package media

import (
	"fmt"
	"strconv"
	"strings"
)

// Thumbnail methods (spec: Client-Server API, "Thumbnails").
const (
	// MethodCrop fills the requested box exactly, cutting what overflows.
	MethodCrop = "crop"
	// MethodScale keeps the aspect ratio; one side may be larger.
	MethodScale = "scale"
)

// ThumbnailSize is one thumbnail size and method.
type ThumbnailSize struct {
	Width, Height int
	Method        string
}

func (s ThumbnailSize) String() string {
	return fmt.Sprintf("%dx%d-%s", s.Width, s.Height, s.Method)
}

// maxThumbnailSide bounds a requested thumbnail side: larger asks are
// clamped, since a thumbnail is never larger than its original anyway.
const maxThumbnailSide = 4096

// ParseThumbnailSizes reads "32x32-crop,320x240-scale,…" (the config key
// media.thumbnails.sizes).
func ParseThumbnailSizes(s string) ([]ThumbnailSize, error) {
	var sizes []ThumbnailSize
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		dims, method, ok := strings.Cut(part, "-")
		if !ok || (method != MethodCrop && method != MethodScale) {
			return nil, fmt.Errorf("thumbnail size %q: want WxH-crop or WxH-scale", part)
		}
		ws, hs, ok := strings.Cut(dims, "x")
		w, werr := strconv.Atoi(ws)
		h, herr := strconv.Atoi(hs)
		if !ok || werr != nil || herr != nil || w < 1 || h < 1 || w > maxThumbnailSide || h > maxThumbnailSide {
			return nil, fmt.Errorf("thumbnail size %q: want positive width and height up to %d", part, maxThumbnailSide)
		}
		sizes = append(sizes, ThumbnailSize{Width: w, Height: h, Method: method})
	}
	return sizes, nil
}
