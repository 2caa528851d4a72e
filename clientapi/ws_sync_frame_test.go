package clientapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/syncer"
)

// TestSyncBatchFrameIsWsSyncBatchsJSON: the hand-assembled "sync" frame
// is byte for byte what encoding/json makes of wsSyncBatch, with and
// without a stream id (one that needs escaping too), but for the HTML
// escaping encoding/json adds (<, >, & as \u003c …; the same JSON).
func TestSyncBatchFrameIsWsSyncBatchsJSON(t *testing.T) {
	var resp syncer.Response
	if err := json.Unmarshal([]byte(`{"next_batch":"s1_2","rooms":{"join":{"!r:hs":{"timeline":{"events":[{"type":"m.room.message","content":{"body":"hi <b>"}}],"limited":false}}}}}`), &resp); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "stream-1", `a"b\c<`} {
		want, err := json.Marshal(wsSyncBatch{Type: "sync", ID: id, Body: &resp})
		if err != nil {
			t.Fatal(err)
		}
		got := syncBatchFrame(id, &resp)
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, got)
		if !bytes.Equal(escaped.Bytes(), want) || !json.Valid(got) {
			t.Errorf("id %q:\n got %s\nwant %s", id, got, want)
		}
	}
}
