package keys

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
)

// TestOutboxEDU: an entry's EDU from the user's keys at relay time.
func TestOutboxEDU(t *testing.T) {
	const u = id.UserID("@a:hs.test")
	resp := newQueryResponse()
	resp.DeviceKeys[u] = map[id.DeviceID]json.RawMessage{
		"D1": json.RawMessage(`{"device_id":"D1","unsigned":{"device_display_name":"phone"}}`)}
	resp.MasterKeys[u] = json.RawMessage(`{"usage":["master"]}`)
	decode := func(raw json.RawMessage) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		e       OutboxEntry
		typ     string
		deleted bool
		check   func(m map[string]any) bool
	}{
		{"a device with keys", OutboxEntry{StreamID: 7, User: u, Kind: OutboxDevice, Device: "D1", PrevIDs: []int64{5}},
			"m.device_list_update", false, func(m map[string]any) bool {
				return m["device_display_name"] == "phone" && m["keys"] != nil && m["stream_id"] == 7.0 &&
					len(m["prev_id"].([]any)) == 1 && m["prev_id"].([]any)[0] == 5.0
			}},
		{"the first update has an empty prev_id", OutboxEntry{StreamID: 3, User: u, Kind: OutboxDevice, Device: "D1"},
			"m.device_list_update", false, func(m map[string]any) bool { return len(m["prev_id"].([]any)) == 0 }},
		{"a device deleted since the change", OutboxEntry{StreamID: 8, User: u, Kind: OutboxDevice, Device: "GONE"},
			"m.device_list_update", true, func(m map[string]any) bool { return m["keys"] == nil }},
		{"a deletion", OutboxEntry{StreamID: 9, User: u, Kind: OutboxDevice, Device: "D1", Deleted: true},
			"m.device_list_update", true, func(m map[string]any) bool { return m["keys"] == nil }},
		{"cross-signing keys", OutboxEntry{StreamID: 10, User: u, Kind: OutboxSigning},
			"m.signing_key_update", false, func(m map[string]any) bool {
				return m["master_key"] != nil && m["self_signing_key"] == nil && m["user_signing_key"] == nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, raw := outboxEDU(tc.e, resp)
			m := decode(raw)
			deleted, _ := m["deleted"].(bool)
			if typ != tc.typ || m["user_id"] != string(u) || deleted != tc.deleted || !tc.check(m) {
				t.Fatalf("%s %s", typ, raw)
			}
		})
	}
}
