package event

import (
	"bytes"
	"testing"

	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// The spec's "Event Signing" vectors (appendices, "Cryptographic Test
// Vectors"). They predate room version 11, whose redaction drops "origin".
var specEvents = []struct {
	name, in, want string
}{
	{"minimal event", `{
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {
        "age_ts": 1000000
    }
}`, `{
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {
        "sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {
        "age_ts": 1000000
    }
}`},
	{"redactable content", `{
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {
        "age_ts": 1000000
    }
}`, `{
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "hashes": {
        "sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {
        "age_ts": 1000000
    }
}`},
}

func specKey(t testing.TB) signing.Key {
	t.Helper()
	k, err := signing.ParseSeed("ed25519:1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSpecEventSigningVectors(t *testing.T) {
	k := specKey(t)
	for _, tc := range specEvents {
		for _, v := range roomversion.All() {
			if v.Redaction >= roomversion.RedactionV11 {
				continue
			}
			t.Run(tc.name+"/v"+string(v.ID), func(t *testing.T) {
				signed, err := HashAndSign(v, mustValue(t, tc.in), "domain", k)
				if err != nil {
					t.Fatal(err)
				}
				want, err := canonicaljson.Canonicalize([]byte(tc.want), true)
				if err != nil {
					t.Fatal(err)
				}
				if got := canonicaljson.Encode(signed); !bytes.Equal(got, want) {
					t.Errorf("got  %s\nwant %s", got, want)
				}
			})
		}
	}
}

// The minimal signed event is a valid event of room versions 3 to 10: it
// parses, its signature and hash verify, and its id is its reference hash.
func TestSpecSignedEventVerifies(t *testing.T) {
	k := specKey(t)
	kr := keyring{"domain": {"ed25519:1": k}}
	for _, v := range roomversion.All() {
		if v.EventFormat == roomversion.FormatV1 || v.Redaction >= roomversion.RedactionV11 {
			continue
		}
		t.Run("v"+string(v.ID), func(t *testing.T) {
			e := mustParse(t, v, []byte(specEvents[0].want))
			if err := Verify(t.Context(), e, kr.lookup); err != nil {
				t.Fatal(err)
			}
			h := e.ReferenceHash()
			want := "$" + signing.EncodeURLBase64(h[:])
			if v.EventFormat == roomversion.FormatV3 {
				want = "$" + signing.EncodeBase64(h[:])
			}
			if string(e.EventID()) != want {
				t.Errorf("event id %s, want %s", e.EventID(), want)
			}
		})
	}
}
