package rooms

import (
	"errors"
	"math"
	"testing"

	"github.com/parleyhq/parley/mxerr"
)

func TestPositionTokens(t *testing.T) {
	// Negative positions are backfilled history (backfill.go).
	for _, pos := range []int64{0, 1, 35, 36, 1 << 40, -1, -37} {
		t.Run(PositionToken(pos), func(t *testing.T) {
			got, err := ParsePositionToken(PositionToken(pos))
			if err != nil || got != pos {
				t.Fatalf("round trip of %d gave %d, %v", pos, got, err)
			}
		})
	}
	for _, bad := range []string{"", "t", "x12", "t-1", "t!!", "s12_3", "h0", "h-1", "h", "t01", "t+1", "tA"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, err := ParsePositionToken(bad); !errors.Is(err, mxerr.InvalidParam) {
				t.Fatalf("ParsePositionToken(%q) = %v, want M_INVALID_PARAM", bad, err)
			}
		})
	}
}

func TestTopoTokens(t *testing.T) {
	for _, p := range []TopoPos{{0, 0, 0}, {1, -5, 1}, {35, 1 << 62, -1}, {1 << 40, math.MinInt64, -(1 << 40)}, topoStart, topoEnd} {
		t.Run(TopoToken(p), func(t *testing.T) {
			got, legacy, err := ParseTopoToken(TopoToken(p))
			if err != nil || legacy || got != p {
				t.Fatalf("round trip of %v gave %v (legacy %v), %v", p, got, legacy, err)
			}
		})
	}
	// The (topo, seq) tokens handed out before the tie-break still parse.
	for tok, want := range map[string]TopoPos{"o1_1": {Topo: 1, Seq: 1}, "oz_-a": {Topo: 35, Seq: -10}} {
		got, legacy, err := ParseTopoToken(tok)
		if err != nil || !legacy || got != want {
			t.Fatalf("ParseTopoToken(%q) = %v (legacy %v), %v; want %v, legacy", tok, got, legacy, err, want)
		}
	}
	// Only the canonical spelling: a token altered by hand is refused.
	for _, bad := range []string{"", "o", "o1", "o1_", "o_1", "o-1_0", "oA_1", "o01_1", "o1_+1", "o1_01", "o1_-0",
		"o1_1_", "o1__1", "o1_1_1_1", "o1_01_1", "o-1_1_1", "o1_1_zzzzzzzzzzzzzzzzzz", "o1_zzzzzzzzzzzzzzzzzz", "t1", "p1_2", "o1 _1"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, _, err := ParseTopoToken(bad); !errors.Is(err, mxerr.InvalidParam) {
				t.Fatalf("ParseTopoToken(%q) = %v, want M_INVALID_PARAM", bad, err)
			}
		})
	}
}

func TestTopoPosOrder(t *testing.T) {
	a := TopoPos{Topo: 5, Tie: 3, Seq: 9}
	for _, c := range []struct{ lo, hi TopoPos }{
		{a.before(), a}, {topoStart, a}, {a, topoEnd},
		{TopoPos{5, 9, 9}, TopoPos{6, -9, 1}}, // topo first
		{TopoPos{5, -1, 9}, TopoPos{5, 1, 1}}, // then the tie
		{TopoPos{5, 1, 1}, TopoPos{5, 1, 2}},  // then arrival
	} {
		if !c.lo.Less(c.hi) || c.hi.Less(c.lo) {
			t.Fatalf("%v and %v are out of order", c.lo, c.hi)
		}
	}
}

func TestTypeMatches(t *testing.T) {
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.*", "m.room.message", true},
		{"m.room.*", "m.roo", false},
		{"*", "anything", true},
		{"m.*.message", "m.room.message", true},
		{"m.*.message", "m.room.member", false},
		{"*.member", "m.room.member", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.typ, func(t *testing.T) {
			if got := typeMatches(tc.pattern, tc.typ); got != tc.want {
				t.Fatalf("typeMatches(%q, %q) = %v", tc.pattern, tc.typ, got)
			}
		})
	}
}

func TestParseEventFilter(t *testing.T) {
	f, err := ParseEventFilter(`{"types":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.explicitTypes {
		t.Fatal("an empty types list must be explicit: it matches nothing")
	}
	if _, err := ParseEventFilter(`[]`); !errors.Is(err, mxerr.BadJSON) {
		t.Fatalf("a list as filter: %v", err)
	}
	if _, err := ParseEventFilter(`{"limit":"ten"}`); !errors.Is(err, mxerr.BadJSON) {
		t.Fatalf("a string limit: %v", err)
	}
}
