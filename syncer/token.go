package syncer

import (
	"strconv"
	"strings"

	"github.com/parleyhq/parley/mxerr"
)

// Stream names one of the position counters a sync token carries. Each
// stream is durable (a database position) so that a token survives a
// restart; a stream that does not exist yet stays at 0.
type Stream int

// The streams of a sync token, in their order in the encoded form. New
// streams are appended, never inserted: a token of an older server then
// still decodes (missing trailing positions read as 0).
const (
	StreamTimeline    Stream = iota // global event stream position (rooms)
	StreamTyping                    // m.typing
	StreamReceipts                  // m.receipt
	StreamToDevice                  // to-device messages
	StreamAccountData               // global and per-room account data
	StreamPresence                  // m.presence
	StreamDeviceLists               // device list changes
	numStreams
)

// String names the stream in logs.
func (s Stream) String() string {
	switch s {
	case StreamTimeline:
		return "timeline"
	case StreamTyping:
		return "typing"
	case StreamReceipts:
		return "receipts"
	case StreamToDevice:
		return "to_device"
	case StreamAccountData:
		return "account_data"
	case StreamPresence:
		return "presence"
	case StreamDeviceLists:
		return "device_lists"
	}
	return "stream(" + strconv.Itoa(int(s)) + ")"
}

// Token is a decoded sync token: one position per stream. The zero Token is
// the beginning of every stream (an initial sync).
type Token struct {
	pos [numStreams]int64
}

// tokenVersion prefixes every encoded token so that the format can change
// without misreading old tokens.
const tokenVersion = "p1"

// Pos is the token's position in stream s.
func (t Token) Pos(s Stream) int64 {
	if s < 0 || s >= numStreams {
		return 0
	}
	return t.pos[s]
}

// With returns the token with stream s at pos.
func (t Token) With(s Stream, pos int64) Token {
	if s >= 0 && s < numStreams {
		t.pos[s] = pos
	}
	return t
}

// After reports whether any stream of t is past the same stream of since.
func (t Token) After(since Token) bool {
	for i := range t.pos {
		if t.pos[i] > since.pos[i] {
			return true
		}
	}
	return false
}

// Max is the stream-wise maximum of t and o.
func (t Token) Max(o Token) Token {
	for i := range t.pos {
		t.pos[i] = max(t.pos[i], o.pos[i])
	}
	return t
}

// String encodes the token: "p1_" followed by the positions in stream
// order, separated by "_" (for example "p1_42_0_0_0_0_0_0"). Clients treat
// it as opaque; it contains only URL-safe characters.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString(tokenVersion)
	for _, p := range t.pos {
		b.WriteByte('_')
		b.WriteString(strconv.FormatInt(p, 10))
	}
	return b.String()
}

// ParseToken decodes a token made by String. Anything else — another
// version, a missing or negative position, trailing garbage — is
// M_INVALID_PARAM: the client must start again with an initial sync.
func ParseToken(s string) (Token, error) {
	var t Token
	rest, ok := strings.CutPrefix(s, tokenVersion+"_")
	if !ok {
		return t, mxerr.InvalidParam.Msg("since: not a sync token of this server")
	}
	parts := strings.Split(rest, "_")
	if len(parts) > int(numStreams) {
		return t, mxerr.InvalidParam.Msg("since: too many positions in the sync token")
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || !canonicalDigits(p) {
			return t, mxerr.InvalidParam.Msg("since: malformed sync token")
		}
		t.pos[i] = n
	}
	return t, nil
}

// canonicalDigits reports whether p is a decimal number as String writes
// it: digits only, no sign, no leading zero.
func canonicalDigits(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
