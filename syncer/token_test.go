package syncer

import (
	"errors"
	"testing"

	"github.com/parleyhq/parley/mxerr"
)

func TestTokenRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		tok  Token
	}{
		{"zero", Token{}},
		{"timeline only", Token{}.With(StreamTimeline, 42)},
		{"every stream", func() Token {
			var tk Token
			for s := Stream(0); s < numStreams; s++ {
				tk = tk.With(s, int64(s)*1000+7)
			}
			return tk
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseToken(c.tok.String())
			if err != nil {
				t.Fatalf("ParseToken(%q): %v", c.tok.String(), err)
			}
			if got != c.tok {
				t.Errorf("round trip of %q gave %q", c.tok.String(), got.String())
			}
		})
	}
}

func TestParseTokenRefusesGarbage(t *testing.T) {
	cases := []struct{ name, in string }{
		{"empty", ""},
		{"other server's format", "s72594_4483_1934"},
		{"version only", "p1"},
		{"unknown version", "p2_1_0_0_0_0_0_0"},
		{"empty position", "p1_1__0_0_0_0_0"},
		{"negative", "p1_-1_0_0_0_0_0_0"},
		{"minus zero", "p1_-0_0_0_0_0_0_0"},
		{"plus sign", "p1_+1_0_0_0_0_0_0"},
		{"leading zero", "p1_01_0_0_0_0_0_0"},
		{"letters", "p1_1a_0_0_0_0_0_0"},
		{"too many streams", "p1_1_0_0_0_0_0_0_0_0_0_0_0"},
		{"overflow", "p1_99999999999999999999_0_0_0_0_0_0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseToken(c.in)
			if !errors.Is(err, mxerr.InvalidParam) {
				t.Errorf("ParseToken(%q) = %v, want M_INVALID_PARAM", c.in, err)
			}
		})
	}
}

// A token of an older server, with fewer streams, reads the missing ones
// as 0: streams are only ever appended.
func TestParseTokenOlderShorterToken(t *testing.T) {
	got, err := ParseToken("p1_5_3")
	if err != nil {
		t.Fatal(err)
	}
	if got.Pos(StreamTimeline) != 5 || got.Pos(StreamTyping) != 3 || got.Pos(StreamDeviceLists) != 0 {
		t.Errorf("got %s", got)
	}
}

func TestTokenAfterAndMax(t *testing.T) {
	a := Token{}.With(StreamTimeline, 5).With(StreamTyping, 1)
	b := Token{}.With(StreamTimeline, 3).With(StreamTyping, 2)
	if !a.After(b) || !b.After(a) {
		t.Errorf("each token is ahead in one stream: %v %v", a.After(b), b.After(a))
	}
	if a.After(a) {
		t.Error("a token is not after itself")
	}
	m := a.Max(b)
	if m.Pos(StreamTimeline) != 5 || m.Pos(StreamTyping) != 2 {
		t.Errorf("Max = %s", m)
	}
}

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"p1_0_0_0_0_0_0_0", "p1_5", "s1_2", "p1_1_-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q parsed to %s, which does not round-trip", s, tok)
		}
	})
}
