package rooms

import (
	"errors"
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
	for _, p := range []TopoPos{{0, 0}, {1, 1}, {35, -1}, {1 << 40, -(1 << 40)}, topoStart, topoEnd} {
		t.Run(TopoToken(p), func(t *testing.T) {
			got, err := ParseTopoToken(TopoToken(p))
			if err != nil || got != p {
				t.Fatalf("round trip of %v gave %v, %v", p, got, err)
			}
		})
	}
	// Only the canonical spelling: a token altered by hand is refused.
	for _, bad := range []string{"", "o", "o1", "o1_", "o_1", "o-1_0", "oA_1", "o01_1", "o1_+1", "o1_01", "o1_-0",
		"o1_1_", "o1_zzzzzzzzzzzzzzzzzz", "t1", "p1_2", "o1 _1"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, err := ParseTopoToken(bad); !errors.Is(err, mxerr.InvalidParam) {
				t.Fatalf("ParseTopoToken(%q) = %v, want M_INVALID_PARAM", bad, err)
			}
		})
	}
}

func TestTopoPosOrder(t *testing.T) {
	a := TopoPos{Topo: 5, Seq: 9}
	if !a.before().Less(a) || a.Less(a.before()) || !topoStart.Less(a) || !a.Less(topoEnd) || !(TopoPos{5, 9}).Less(TopoPos{6, 1}) {
		t.Fatal("topological positions are out of order")
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
