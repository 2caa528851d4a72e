package syncer

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/id"
)

type countingIgnoreList struct {
	reads   int
	ignored map[id.UserID]bool
}

func (l *countingIgnoreList) Ignored(context.Context, id.UserID) (map[id.UserID]bool, error) {
	l.reads++
	return l.ignored, nil
}

// TestIgnoreCacheRereadsWhenAccountDataMoved: the list is read once per
// account data position; an ignore committed at a later position is in
// the answer for that position.
func TestIgnoreCacheRereadsWhenAccountDataMoved(t *testing.T) {
	ctx := context.Background()
	list := &countingIgnoreList{ignored: map[id.UserID]bool{}}
	c := &ignoreCache{list: list}
	const user = id.UserID("@a:x")
	for range 3 {
		if got, err := c.at(ctx, user, 5); err != nil || len(got) != 0 {
			t.Fatalf("at 5: %v, %v", got, err)
		}
	}
	if list.reads != 1 {
		t.Errorf("%d reads at one position, want 1", list.reads)
	}
	list.ignored = map[id.UserID]bool{"@spam:x": true}
	if got, _ := c.at(ctx, user, 6); !got["@spam:x"] {
		t.Errorf("at 6: %v, want the new ignore", got)
	}
	if list.reads != 2 {
		t.Errorf("%d reads after the move, want 2", list.reads)
	}
}
