package auth

import (
	"errors"
	"fmt"

	"github.com/parleyhq/parley/mxerr"
)

// ErrNotAllowed is wrapped by every error Check and CheckAuthEvents return
// when the authorisation rules reject an event.
var ErrNotAllowed = errors.New("event not allowed by the authorisation rules")

// RuleError is a rejection: the rule number as the room version's page of
// the spec numbers it (numbers shift between versions) and why.
type RuleError struct {
	Rule   string // for example "4.3.2"
	Reason string // for example "sender is banned"
}

// Error implements error: "rule 4.3.2: sender is banned".
func (e *RuleError) Error() string { return "rule " + e.Rule + ": " + e.Reason }

// Unwrap lets errors.Is match both ErrNotAllowed and mxerr.Forbidden, so the
// client edge maps a rejection to M_FORBIDDEN with the rule in the message.
func (e *RuleError) Unwrap() []error {
	return []error{ErrNotAllowed, mxerr.Forbidden.Msg(e.Error())}
}

func deny(rule, reason string) error { return &RuleError{Rule: rule, Reason: reason} }

func denyf(rule, format string, args ...any) error {
	return &RuleError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}
