package canonicaljson

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error of this package wraps exactly one of them, so
// that the edge can map it: ErrSyntax and ErrInvalidUTF8 mean the body is not
// JSON at all (M_NOT_JSON); the others mean it is JSON that Matrix's canonical
// form forbids (M_BAD_JSON), which matters from room version 6 on and for
// every request body of the client API.
var (
	// ErrSyntax: the input is not JSON (RFC 8259 grammar).
	ErrSyntax = errors.New("canonicaljson: not JSON")
	// ErrInvalidUTF8: the input is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("canonicaljson: invalid UTF-8")
	// ErrInvalidUnicode: a \u escape encodes a lone UTF-16 surrogate.
	ErrInvalidUnicode = errors.New("canonicaljson: lone surrogate in \\u escape")
	// ErrFloat: a number has a fraction or an exponent (strict mode).
	ErrFloat = errors.New("canonicaljson: number is not an integer")
	// ErrIntegerRange: an integer is outside [-(2^53)+1, (2^53)-1] (strict
	// mode), or a number does not fit a float64 at all (lenient mode).
	ErrIntegerRange = errors.New("canonicaljson: number out of range")
	// ErrDuplicateKey: an object has the same key twice (strict mode).
	ErrDuplicateKey = errors.New("canonicaljson: duplicate key")
	// ErrTooDeep: arrays and objects nest deeper than MaxDepth.
	ErrTooDeep = errors.New("canonicaljson: nested too deeply")
)

// IsNotJSON reports whether err means the input is not JSON at all, as
// opposed to JSON that breaks the canonical rules.
func IsNotJSON(err error) bool {
	return errors.Is(err, ErrSyntax) || errors.Is(err, ErrInvalidUTF8)
}

func errAt(sentinel error, pos int, format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", sentinel, pos, fmt.Sprintf(format, args...))
}
