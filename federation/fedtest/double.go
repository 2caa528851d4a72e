package fedtest

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// Double is a federation server a test plays: real TLS with a certificate
// of the test CA for its name, its own ed25519 key served (self-signed) at
// GET /_matrix/key/v2/server, and whatever endpoints the test mounts with
// Handle. Every other path answers 404 M_UNRECOGNIZED, as a server that
// lacks an endpoint does. It does not check the X-Matrix signatures of
// the requests it gets.
type Double struct {
	Name id.ServerName
	Key  signing.Key
	// Addr is the loopback address it listens on.
	Addr string
	mux  *http.ServeMux
}

// StartDouble starts a double named name on addr (a loopback host:port,
// which the servers under test resolve name to) with a certificate of ca;
// it stops with the test.
func StartDouble(t testing.TB, ca *CA, name id.ServerName, addr string) *Double {
	t.Helper()
	key, err := signing.Generate("ed25519:double")
	if err != nil {
		t.Fatal(err)
	}
	d := &Double{Name: name, Key: key, Addr: addr, mux: http.NewServeMux()}
	d.mux.HandleFunc("GET /_matrix/key/v2/server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d.keyDocument(t))
	})
	d.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate(t, string(name))}}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

// Handle mounts h on pattern (http.ServeMux syntax, e.g.
// "PUT /_matrix/federation/v1/invite/{roomId}/{eventId}").
func (d *Double) Handle(pattern string, h http.HandlerFunc) { d.mux.HandleFunc(pattern, h) }

// keyDocument is the double's key response, valid for an hour.
func (d *Double) keyDocument(t testing.TB) []byte {
	obj := canonicaljson.ObjectValue(
		canonicaljson.Member{Key: "server_name", Value: canonicaljson.StringValue(string(d.Name))},
		canonicaljson.Member{Key: "verify_keys", Value: canonicaljson.ObjectValue(canonicaljson.Member{
			Key: d.Key.ID(), Value: canonicaljson.ObjectValue(canonicaljson.Member{Key: "key", Value: canonicaljson.StringValue(d.Key.PublicBase64())}),
		})},
		canonicaljson.Member{Key: "old_verify_keys", Value: canonicaljson.ObjectValue()},
		canonicaljson.Member{Key: "valid_until_ts", Value: canonicaljson.IntValue(time.Now().Add(time.Hour).UnixMilli())},
	)
	signed, err := signing.SignServer(obj, d.Name, d.Key)
	if err != nil {
		t.Error(err)
	}
	return canonicaljson.Encode(signed)
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
