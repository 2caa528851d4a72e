package clientapi_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/parleyhq/parley/clientapi"
	"github.com/parleyhq/parley/mxerr"
)

// checkDecodeError fails unless err is nil or one of the Matrix errors a
// malformed body may produce.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	m, ok := mxerr.As(err)
	if !ok || (m.Code != "M_NOT_JSON" && m.Code != "M_BAD_JSON") || m.Status != 400 {
		t.Fatalf("decode error %v is not a 400 M_NOT_JSON / M_BAD_JSON", err)
	}
}

// roundTrip re-encodes a decoded request and decodes it again: what the
// decoder accepted must survive unchanged.
func roundTrip[T any](t *testing.T, v T, decode func([]byte) (T, error)) {
	t.Helper()
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("decode of re-encoded %s: %v", enc, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("round trip changed the request: %+v → %+v", v, again)
	}
}

func FuzzDecodeLoginRequest(f *testing.F) {
	f.Add([]byte(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"pw"}`))
	f.Add([]byte(`{"type":"m.login.token","token":"plt_x","device_id":"D","refresh_token":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := clientapi.DecodeLoginRequest(body)
		checkDecodeError(t, err)
		if err == nil {
			roundTrip(t, req, clientapi.DecodeLoginRequest)
		}
	})
}

func FuzzDecodeRegisterRequest(f *testing.F) {
	f.Add([]byte(`{"username":"alice","password":"pw","auth":{"type":"m.login.dummy","session":"S"}}`))
	f.Add([]byte(`{"inhibit_login":true,"initial_device_display_name":"phone","refresh_token":false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := clientapi.DecodeRegisterRequest(body)
		checkDecodeError(t, err)
		if err == nil {
			roundTrip(t, req, clientapi.DecodeRegisterRequest)
		}
	})
}
