package mediatest

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"golang.org/x/image/webp"
)

func TestWebPDecodes(t *testing.T) {
	want := color.NRGBA{R: 10, G: 200, B: 30, A: 255}
	img, err := webp.Decode(bytes.NewReader(WebP(37, 21, want)))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 37 || b.Dy() != 21 {
		t.Errorf("size %v, want 37x21", b)
	}
	got := color.NRGBAModel.Convert(img.At(20, 10)).(color.NRGBA)
	if got != want {
		t.Errorf("pixel %v, want %v", got, want)
	}
}

func TestBombHeader(t *testing.T) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(BombPNG(100000, 90000)))
	if err != nil || format != "png" || cfg.Width != 100000 || cfg.Height != 90000 {
		t.Fatalf("DecodeConfig = %+v %q %v", cfg, format, err)
	}
}
