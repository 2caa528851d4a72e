package media

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Image formats the thumbnailer decodes, by content type.
var decoders = map[string]struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}{
	"image/jpeg": {jpeg.DecodeConfig, jpeg.Decode},
	"image/png":  {png.DecodeConfig, png.Decode},
	"image/gif":  {gif.DecodeConfig, gif.Decode},
	"image/webp": {webp.DecodeConfig, webp.Decode},
}

// baseType is the content type without parameters.
func baseType(ct string) string {
	t, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return t
}

// thumbnailable reports whether content of this type can be thumbnailed.
func thumbnailable(contentType string) bool {
	_, ok := decoders[baseType(contentType)]
	return ok
}

// imageConfig reads only the header of an image: its dimensions, before
// any pixel is decoded, so that a decompression bomb (a few kilobytes
// declaring gigapixels) costs nothing.
func imageConfig(r io.Reader, contentType string, maxPixels int64) (image.Config, error) {
	d, ok := decoders[baseType(contentType)]
	if !ok {
		return image.Config{}, ErrCannotThumbnail
	}
	cfg, err := d.config(r)
	if err != nil {
		return image.Config{}, fmt.Errorf("%w: %v", ErrCannotThumbnail, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return image.Config{}, ErrCannotThumbnail
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return image.Config{}, ErrImageTooLarge
	}
	return cfg, nil
}

// decodeImage checks the header, then decodes the first frame.
func decodeImage(r io.Reader, contentType string, maxPixels int64) (image.Image, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header, _ := br.Peek(64 << 10)
	if _, err := imageConfig(bytes.NewReader(header), contentType, maxPixels); err != nil {
		return nil, err
	}
	img, err := decoders[baseType(contentType)].decode(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotThumbnail, err)
	}
	// The header may lie about the size; the decoded image may not.
	if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > maxPixels {
		return nil, ErrImageTooLarge
	}
	return img, nil
}

// targetSize is the size of the thumbnail of a w×h image for want (never
// larger than the original: the spec forbids upscaling).
//   - scale: fits within want, keeping the aspect ratio;
//   - crop: exactly want's aspect ratio, as large as want when the original
//     allows.
func targetSize(w, h int, want ThumbnailSize) (tw, th int) {
	if want.Method == MethodCrop {
		tw, th = want.Width, want.Height
		if tw > w || th > h {
			// Shrink the box, keeping its aspect, until it fits.
			if float64(w)/float64(tw) < float64(h)/float64(th) {
				th = max(1, th*w/tw)
				tw = w
			} else {
				tw = max(1, tw*h/th)
				th = h
			}
		}
		return tw, th
	}
	if w <= want.Width && h <= want.Height {
		return w, h
	}
	if int64(w)*int64(want.Height) >= int64(h)*int64(want.Width) {
		return want.Width, max(1, int(int64(h)*int64(want.Width)/int64(w)))
	}
	return max(1, int(int64(w)*int64(want.Height)/int64(h))), want.Height
}

// resize makes the thumbnail of img for want.
func resize(img image.Image, want ThumbnailSize) image.Image {
	b := img.Bounds()
	tw, th := targetSize(b.Dx(), b.Dy(), want)
	src := b
	if want.Method == MethodCrop {
		// The centred part of the original with the target's aspect.
		cw, ch := b.Dx(), b.Dy()
		if int64(cw)*int64(th) > int64(ch)*int64(tw) {
			cw = int(int64(ch) * int64(tw) / int64(th))
		} else {
			ch = int(int64(cw) * int64(th) / int64(tw))
		}
		x0 := b.Min.X + (b.Dx()-cw)/2
		y0 := b.Min.Y + (b.Dy()-ch)/2
		src = image.Rect(x0, y0, x0+max(cw, 1), y0+max(ch, 1))
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, src, draw.Src, nil)
	return dst
}

// encodeThumbnail encodes a static thumbnail: JPEG for JPEG originals
// (photos), PNG for the rest (keeps transparency). Both are in the spec's
// list of types safe to serve inline.
func encodeThumbnail(img image.Image, sourceType string) ([]byte, string, error) {
	var buf bytes.Buffer
	if baseType(sourceType) == "image/jpeg" {
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), "image/jpeg", nil
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "image/png", nil
}

// maxAnimationWork bounds the pixels an animated thumbnail may decode in
// all (frames × canvas), in multiples of the per-image limit.
const maxAnimationWork = 4

// animatedGIFThumbnail scales every frame of an animated GIF. Frames are
// composed on a canvas first (GIF frames are patches with disposal modes),
// so every output frame is a whole picture.
func animatedGIFThumbnail(r io.Reader, want ThumbnailSize, maxPixels int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header, _ := br.Peek(64 << 10)
	cfg, err := imageConfig(bytes.NewReader(header), "image/gif", maxPixels)
	if err != nil {
		return nil, err
	}
	anim, err := gif.DecodeAll(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotThumbnail, err)
	}
	if int64(len(anim.Image))*int64(cfg.Width)*int64(cfg.Height) > maxAnimationWork*maxPixels {
		return nil, ErrImageTooLarge
	}
	canvas := image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
	out := &gif.GIF{LoopCount: anim.LoopCount}
	for i, frame := range anim.Image {
		var saved *image.RGBA
		disposal := byte(0)
		if i < len(anim.Disposal) {
			disposal = anim.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = image.NewRGBA(canvas.Bounds())
			copy(saved.Pix, canvas.Pix)
		}
		draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Over)
		scaled := resize(canvas, want)
		pal := frame.Palette
		if len(pal) == 0 {
			pal = color.Palette{color.Transparent, color.Black, color.White}
		}
		p := image.NewPaletted(scaled.Bounds(), pal)
		draw.FloydSteinberg.Draw(p, p.Bounds(), scaled, image.Point{})
		out.Image = append(out.Image, p)
		delay := 10
		if i < len(anim.Delay) {
			delay = anim.Delay[i]
		}
		out.Delay = append(out.Delay, delay)
		out.Disposal = append(out.Disposal, gif.DisposalNone)
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, frame.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = saved
		}
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
