package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// ThumbnailRequest is what a client asks of GET …/thumbnail.
type ThumbnailRequest struct {
	Width, Height int
	Method        string // crop or scale; empty: scale
	Animated      bool
}

// Thumbnail returns a thumbnail of mxc for req (spec: Client-Server API,
// "Thumbnails"): the stored one for the smallest configured size that is
// at least as large as asked, else one of exactly the asked size, made on
// demand and stored; the original itself when it is smaller than asked.
func (s *Service) Thumbnail(ctx context.Context, mxc MXC, req ThumbnailRequest, wait time.Duration) (Content, error) {
	if req.Method == "" {
		req.Method = MethodScale
	}
	if req.Width < 1 || req.Height < 1 || (req.Method != MethodCrop && req.Method != MethodScale) {
		return Content{}, ErrBadThumbnailParam
	}
	req.Width, req.Height = min(req.Width, maxThumbnailSide), min(req.Height, maxThumbnailSide)
	m, err := s.uploaded(ctx, mxc, wait)
	if err != nil {
		return Content{}, err
	}
	if !thumbnailable(m.ContentType) {
		return Content{}, ErrCannotThumbnail
	}
	isGIF := baseType(m.ContentType) == "image/gif"
	animated := req.Animated && isGIF // the only animated format decoded here
	want := s.chooseSize(req)
	// A stored thumbnail of want exists only for originals larger than
	// want, so it answers without reading the original at all.
	if stored, ok, err := s.storedThumbnail(ctx, mxc, want, animated); err != nil || ok {
		return stored, err
	}
	w, h, err := s.dimensions(ctx, m)
	if err != nil {
		return Content{}, err
	}
	if w <= req.Width && h <= req.Height && (!isGIF || animated) {
		// Smaller than asked: the spec wants the original, not a copy.
		return s.Download(ctx, mxc, 0)
	}
	return s.makeThumbnail(ctx, m, want, animated)
}

// chooseSize picks the configured size for req, or req itself.
func (s *Service) chooseSize(req ThumbnailRequest) ThumbnailSize {
	want := ThumbnailSize{Width: req.Width, Height: req.Height, Method: req.Method}
	if s.cfg.DynamicThumbnails {
		return want
	}
	var fits []ThumbnailSize
	for _, c := range s.cfg.ThumbnailSizes {
		if c.Method == req.Method && c.Width >= req.Width && c.Height >= req.Height {
			fits = append(fits, c)
		}
	}
	if len(fits) == 0 {
		return want // never smaller than asked (spec: MUST NOT)
	}
	sort.Slice(fits, func(i, j int) bool { return fits[i].Width*fits[i].Height < fits[j].Width*fits[j].Height })
	return fits[0]
}

// dimensions reads the original's header only.
func (s *Service) dimensions(ctx context.Context, m Media) (int, int, error) {
	b, err := s.openBlob(ctx, m.Blob)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	cfg, err := imageConfig(b, m.ContentType, s.cfg.MaxImagePixels)
	if err != nil {
		return 0, 0, err
	}
	return cfg.Width, cfg.Height, nil
}

func (s *Service) storedThumbnail(ctx context.Context, mxc MXC, want ThumbnailSize, animated bool) (Content, bool, error) {
	ths, err := s.stores.Thumbnails.Thumbnails(ctx, mxc)
	if err != nil {
		return Content{}, false, err
	}
	for _, th := range ths {
		if th.For == want && th.Animated == animated {
			b, err := s.openBlob(ctx, th.Blob)
			if errors.Is(err, ErrNotFound) {
				return Content{}, false, nil // make it again
			}
			if err != nil {
				return Content{}, false, err
			}
			return Content{Media: thumbnailMedia(mxc, th), Body: b}, true, nil
		}
	}
	return Content{}, false, nil
}

// makeThumbnail decodes the original, scales it, stores and records the
// result. Decoding is bounded to a few at a time: it is the costly part.
func (s *Service) makeThumbnail(ctx context.Context, m Media, want ThumbnailSize, animated bool) (Content, error) {
	select {
	case s.thumbSlots <- struct{}{}:
		defer func() { <-s.thumbSlots }()
	case <-ctx.Done():
		return Content{}, ctx.Err()
	}
	b, err := s.openBlob(ctx, m.Blob)
	if err != nil {
		return Content{}, err
	}
	defer b.Close()
	var data []byte
	var contentType string
	if animated {
		data, err = animatedGIFThumbnail(b, want, s.cfg.MaxImagePixels)
		contentType = "image/gif"
	} else {
		img, derr := decodeImage(b, m.ContentType, s.cfg.MaxImagePixels)
		if derr != nil {
			return Content{}, derr
		}
		data, contentType, err = encodeThumbnail(resize(img, want), m.ContentType)
	}
	if err != nil {
		return Content{}, err
	}
	key, size, err := s.stores.Blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return Content{}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	th := Thumbnail{MXC: m.MXC, For: want, Animated: animated, ContentType: contentType, Size: size, Blob: key, CreatedAt: s.now()}
	if err := s.stores.Thumbnails.PutThumbnail(ctx, th); err != nil {
		return Content{}, err
	}
	return Content{Media: thumbnailMedia(m.MXC, th), Body: nopSeekCloser{bytes.NewReader(data)}}, nil
}

func thumbnailMedia(mxc MXC, th Thumbnail) Media {
	ext := "png"
	switch th.ContentType {
	case "image/jpeg":
		ext = "jpg"
	case "image/gif":
		ext = "gif"
	}
	return Media{MXC: mxc, ContentType: th.ContentType, Size: th.Size, Blob: th.Blob,
		Filename: "thumbnail." + ext, UploadedAt: th.CreatedAt}
}

// pregenerate makes the configured thumbnail sizes of an image in the
// background after its upload, so that the first request finds them.
func (s *Service) pregenerate(m Media) {
	if !thumbnailable(m.ContentType) || len(s.cfg.ThumbnailSizes) == 0 {
		return
	}
	select {
	case <-s.stop:
		return
	default:
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		w, h, err := s.dimensions(ctx, m)
		if err != nil {
			return // refused or undecodable: requests answer why
		}
		for _, size := range s.cfg.ThumbnailSizes {
			if w <= size.Width && h <= size.Height {
				continue // requests for it get the original
			}
			if _, ok, err := s.storedThumbnail(ctx, m.MXC, size, false); err != nil || ok {
				continue
			}
			c, err := s.makeThumbnail(ctx, m, size, false)
			if err != nil {
				s.logger.WarnContext(ctx, "pre-generate thumbnail", slog.String("media", m.MXC.String()),
					slog.String("size", size.String()), slog.String("error", err.Error()))
				return
			}
			c.Body.Close()
		}
	}()
}

type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }
