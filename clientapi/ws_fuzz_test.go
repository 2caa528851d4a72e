package clientapi

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame: any bytes a client sends decode to a frame or to an
// error, never a panic; what decodes was a JSON object, and a decoded sync
// frame's filter is either refused or usable as /sync's filter parameter.
//
//	go test -run '^$' -fuzz FuzzDecodeFrame ./clientapi
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"auth","access_token":"syt_x"}`,
		`{"type":"request","id":"c1","method":"PUT","path":"/_matrix/client/v3/rooms/%21r%3Ahs/send/m.room.message/t1","body":{"msgtype":"m.text","body":"hi"}}`,
		`{"type":"sync","since":null,"filter":{"room":{"timeline":{"limit":5}}},"full_state":false,"set_presence":"online"}`,
		`{"type":"sync","since":"t1","filter":"0"}`,
		`{"type":"sync","filter":7}`,
		`{"type":7}`, `[]`, `"x"`, ``, `{`, ` {"type":"request"} `, "{}\v",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr wsInFrame
		if err := decodeFrame(data, &fr); err != nil {
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatalf("decoded a frame from something that is not a JSON object: %q", data)
		}
		filter, err := syncFilterParam(fr.Filter)
		if err != nil {
			return
		}
		if len(filter) > 0 && filter[0] == '{' && !json.Valid([]byte(filter)) {
			t.Fatalf("inline filter %q is not JSON", filter)
		}
	})
}
