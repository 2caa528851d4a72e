// Package xmatrix is the X-Matrix Authorization scheme of the Server-Server
// API ("Request Authentication"): parsing and formatting the header,
// signing an outbound request as our server and verifying an inbound one.
//
// It imports only the standard library, id, mxerr and the rooms signing
// packages; it knows nothing of HTTP routing or key fetching.
package xmatrix

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// Scheme is the auth scheme of the Authorization header.
const Scheme = "X-Matrix"

// Auth is one parsed X-Matrix Authorization header.
type Auth struct {
	Origin id.ServerName
	// Destination is "" when the header has none (servers before v1.3).
	Destination id.ServerName
	KeyID       string
	Signature   string
}

// ErrMalformed is returned by Parse for a header that is not a usable
// X-Matrix header.
var ErrMalformed = errors.New("malformed X-Matrix authorization header")

// Parse reads an Authorization header value: the scheme X-Matrix
// (case-insensitive), one or more spaces, then comma-separated name=value
// parameters (RFC 9110 §11.4), names case-insensitive, values tokens or
// quoted strings with backslash escapes. Colons are accepted in unquoted
// values, as the spec asks for older servers. Unknown parameters are
// ignored; origin, key and sig are required.
func Parse(header string) (Auth, error) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return Auth{}, fmt.Errorf("%w: scheme is not %s", ErrMalformed, Scheme)
	}
	var a Auth
	seen := map[string]bool{}
	p := paramParser{s: rest}
	for {
		p.skipSpace()
		if p.done() {
			break
		}
		name, value, err := p.param()
		if err != nil {
			return Auth{}, err
		}
		name = strings.ToLower(name)
		if seen[name] {
			return Auth{}, fmt.Errorf("%w: parameter %s repeated", ErrMalformed, name)
		}
		seen[name] = true
		switch name {
		case "origin":
			a.Origin = id.ServerName(value)
		case "destination":
			a.Destination = id.ServerName(value)
		case "key":
			a.KeyID = value
		case "sig":
			a.Signature = value
		}
		p.skipSpace()
		if p.done() {
			break
		}
		if !p.consume(',') {
			return Auth{}, fmt.Errorf("%w: expected a comma at %d", ErrMalformed, p.i)
		}
	}
	if a.Origin == "" || a.KeyID == "" || a.Signature == "" {
		return Auth{}, fmt.Errorf("%w: origin, key and sig are required", ErrMalformed)
	}
	if _, err := id.ParseServerName(string(a.Origin)); err != nil {
		return Auth{}, fmt.Errorf("%w: origin: %w", ErrMalformed, err)
	}
	if seen["destination"] {
		if _, err := id.ParseServerName(string(a.Destination)); err != nil {
			return Auth{}, fmt.Errorf("%w: destination: %w", ErrMalformed, err)
		}
	}
	return a, nil
}

// String formats the header the way the spec asks senders to, for older
// servers: one space after the scheme, lower-case names, no whitespace
// around commas, every value quoted.
func (a Auth) String() string {
	var b strings.Builder
	b.WriteString(Scheme)
	b.WriteString(" origin=")
	writeQuoted(&b, string(a.Origin))
	if a.Destination != "" {
		b.WriteString(",destination=")
		writeQuoted(&b, string(a.Destination))
	}
	b.WriteString(",key=")
	writeQuoted(&b, a.KeyID)
	b.WriteString(",sig=")
	writeQuoted(&b, a.Signature)
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// paramParser walks the parameter list of a header.
type paramParser struct {
	s string
	i int
}

func (p *paramParser) done() bool { return p.i >= len(p.s) }

func (p *paramParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *paramParser) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *paramParser) param() (name, value string, err error) {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	name = p.s[start:p.i]
	if name == "" {
		return "", "", fmt.Errorf("%w: expected a parameter name at %d", ErrMalformed, start)
	}
	p.skipSpace()
	if !p.consume('=') {
		return "", "", fmt.Errorf("%w: parameter %s has no value", ErrMalformed, name)
	}
	p.skipSpace()
	if p.consume('"') {
		var b strings.Builder
		for {
			if p.done() {
				return "", "", fmt.Errorf("%w: unterminated quoted value of %s", ErrMalformed, name)
			}
			c := p.s[p.i]
			p.i++
			switch {
			case c == '"':
				return name, b.String(), nil
			case c == '\\':
				if p.done() {
					return "", "", fmt.Errorf("%w: dangling backslash in %s", ErrMalformed, name)
				}
				b.WriteByte(p.s[p.i])
				p.i++
			case c < 0x20 && c != '\t' || c == 0x7f:
				return "", "", fmt.Errorf("%w: control character in %s", ErrMalformed, name)
			default:
				b.WriteByte(c)
			}
		}
	}
	start = p.i
	for p.i < len(p.s) && isUnquotedChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", "", fmt.Errorf("%w: parameter %s has an empty value", ErrMalformed, name)
	}
	return name, p.s[start:p.i], nil
}

// isUnquotedChar accepts more than a token in an unquoted value: colons,
// as the spec asks for older servers, and the '/', '+' and '=' of Base64
// signatures; a comma, quote, backslash or whitespace ends it.
func isUnquotedChar(c byte) bool {
	return c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\'
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// requestObject is the JSON the signature covers (step 1 of "Request
// Authentication"): method, uri, origin, destination and, when the request
// has a body, its parsed content.
func requestObject(method, uri string, origin, destination id.ServerName, content []byte) (canonicaljson.Value, error) {
	members := []canonicaljson.Member{
		{Key: "method", Value: canonicaljson.StringValue(method)},
		{Key: "uri", Value: canonicaljson.StringValue(uri)},
		{Key: "origin", Value: canonicaljson.StringValue(string(origin))},
		{Key: "destination", Value: canonicaljson.StringValue(string(destination))},
	}
	if len(content) > 0 {
		// Lenient: a transaction may carry events of room versions 1–5,
		// whose JSON may hold floats or large integers.
		v, err := canonicaljson.ParseLenient(content)
		if err != nil {
			return canonicaljson.Value{}, fmt.Errorf("request body: %w", err)
		}
		members = append(members, canonicaljson.Member{Key: "content", Value: v})
	}
	return canonicaljson.ObjectValue(members...), nil
}

// Sign returns the Authorization header value for a request from origin to
// destination. uri is the path with its query string exactly as sent;
// content is the JSON body, nil when there is none.
func Sign(k signing.Key, origin, destination id.ServerName, method, uri string, content []byte) (string, error) {
	obj, err := requestObject(method, uri, origin, destination, content)
	if err != nil {
		return "", err
	}
	k = k.Current() // one key for the signature and its id
	sig := signing.EncodeBase64(k.Sign(signing.SigningBytes(obj)))
	return Auth{Origin: origin, Destination: destination, KeyID: k.ID(), Signature: sig}.String(), nil
}

// KeyFunc returns a server's verify key valid at atTS (ms);
// keyring.Keyring.VerifyKey fits.
type KeyFunc func(ctx context.Context, server id.ServerName, keyID string, atTS int64) (ed25519.PublicKey, error)

// Verify authenticates an inbound request addressed to self. headers are
// every Authorization header value of the request; the first X-Matrix one
// that verifies wins, and every X-Matrix header must name the same origin.
// It returns the origin, or an mxerr: M_UNAUTHORIZED (401) for a missing,
// malformed, unverifiable or misaddressed signature.
func Verify(ctx context.Context, headers []string, self id.ServerName, method, uri string, content []byte, keys KeyFunc) (id.ServerName, error) {
	var auths []Auth
	for _, h := range headers {
		scheme, _, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, Scheme) {
			continue
		}
		a, err := Parse(h)
		if err != nil {
			return "", mxerr.Unauthorized.Msg(err.Error())
		}
		if len(auths) > 0 && a.Origin != auths[0].Origin {
			return "", mxerr.Unauthorized.Msg("X-Matrix headers name different origins")
		}
		auths = append(auths, a)
	}
	if len(auths) == 0 {
		return "", mxerr.Unauthorized.Msg("missing X-Matrix authorization")
	}
	var errs []error
	for _, a := range auths {
		if a.Destination != "" && a.Destination != self {
			return "", mxerr.Unauthorized.Msgf("request is for %s, not for this server", a.Destination)
		}
		if a.Origin == self {
			return "", mxerr.Unauthorized.Msg("request claims to come from this server")
		}
		// Older servers leave destination out of the header; they still
		// sign with it set to us.
		obj, err := requestObject(method, uri, a.Origin, self, content)
		if err != nil {
			return "", mxerr.NotJSON.Msg("request body is not valid JSON")
		}
		// A request is signed now: the key must be valid now (an old key
		// only verifies events made before it expired).
		pub, err := keys(ctx, a.Origin, a.KeyID, time.Now().UnixMilli())
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s of %s: %w", a.KeyID, a.Origin, err))
			continue
		}
		if err := signing.VerifyBytes(signing.SigningBytes(obj), a.Signature, string(a.Origin), a.KeyID, pub); err != nil {
			errs = append(errs, err)
			continue
		}
		return a.Origin, nil
	}
	return "", &verifyError{msg: mxerr.Unauthorized.Msg("request signature does not verify"), err: errors.Join(errs...)}
}

// verifyError is the Matrix error a peer sees, wrapping the detail the
// log gets.
type verifyError struct {
	msg *mxerr.Error
	err error
}

func (e *verifyError) Error() string { return e.msg.Error() + ": " + e.err.Error() }

func (e *verifyError) Unwrap() []error { return []error{e.msg, e.err} }
