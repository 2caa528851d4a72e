package canonicaljson

import "testing"

// A typical federation event, as received (not canonical: keys unsorted).
var benchEvent = []byte(`{"type":"m.room.message","room_id":"!abcdefghijkl:example.org","sender":"@alice:example.org",
"content":{"msgtype":"m.text","body":"Hello, world! \u00e9\u65e5\ud83d\ude00 with a \"quote\" and a\nnewline","m.mentions":{"user_ids":["@bob:example.org"]}},
"origin_server_ts":1700000000000,"depth":1234,"prev_events":["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"],
"auth_events":["$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","$ccccccccccccccccccccccccccccccccccccccccccc"],
"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
"signatures":{"example.org":{"ed25519:a_AbCd":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},
"unsigned":{"age_ts":1700000000000}}`)

func BenchmarkCanonicalJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if _, err := Canonicalize(benchEvent, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate is the check of a client request body.
func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if err := Validate(benchEvent, true); err != nil {
			b.Fatal(err)
		}
	}
}
