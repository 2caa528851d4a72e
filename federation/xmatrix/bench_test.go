package xmatrix

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/rooms/signing"
)

// BenchmarkVerifyTransaction measures authenticating one inbound
// transaction of 50 PDUs (about 50 KB): parse the header, canonicalise
// the body, verify the signature.
func BenchmarkVerifyTransaction(b *testing.B) {
	k, _ := signing.Generate("ed25519:b1")
	var body bytes.Buffer
	body.WriteString(`{"origin":"hs1.test","origin_server_ts":1,"pdus":[`)
	for i := range 50 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"type":"m.room.message","room_id":"!r:hs1.test","sender":"@u:hs1.test","content":{"body":"message %d %s","msgtype":"m.text"},"depth":%d,"prev_events":["$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"],"auth_events":[],"origin_server_ts":%d,"hashes":{"sha256":"abc"},"signatures":{"hs1.test":{"ed25519:b1":"sig"}}}`, i, bytes.Repeat([]byte("x"), 600), i, i)
	}
	body.WriteString(`]}`)
	content := body.Bytes()
	uri := "/_matrix/federation/v1/send/txn1"
	header, err := Sign(k, "hs1.test", "hs2.test", "PUT", uri, content)
	if err != nil {
		b.Fatal(err)
	}
	keys := keysOf("hs1.test", k)
	ctx := context.Background()
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(ctx, []string{header}, "hs2.test", "PUT", uri, content, keys); err != nil {
			b.Fatal(err)
		}
	}
}
