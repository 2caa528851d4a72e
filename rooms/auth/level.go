package auth

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/rooms/roomversion"
)

var (
	errBadLevel   = errors.New("power level is not an integer")
	errLevelRange = errors.New("power level is out of range")
)

// parseLevel reads one power level value as the room version allows it:
// from v10 a JSON integer only; before v10 also a string holding an integer
// (spec fragment v1-stringy-power-levels: leading zeros, one sign and
// surrounding whitespace allowed); in v1–5, whose events need not be
// canonical JSON, also a float, truncated after applying the exponent
// (v1-floaty-power-levels). Values outside int64 are rejected, as the spec
// rejects values outside a double's range.
func parseLevel(rv roomversion.Version, raw []byte) (int64, error) {
	if len(raw) == 0 {
		return 0, errBadLevel
	}
	switch c := raw[0]; {
	case c == '"':
		if rv.IntegerPowerLevels {
			return 0, errBadLevel
		}
		s, ok := stringValue(raw)
		if !ok {
			return 0, errBadLevel
		}
		s = strings.TrimSpace(s)
		if s == "" || (s[0] != '+' && s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
			return 0, errBadLevel
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errBadLevel
		}
		return v, nil
	case c == '-' || c >= '0' && c <= '9':
		s := string(raw)
		v, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return v, nil
		}
		if rv.StrictCanonicalJSON || !strings.ContainsAny(s, ".eE") {
			if errors.Is(err, strconv.ErrRange) {
				return 0, errLevelRange
			}
			return 0, errBadLevel
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return 0, errLevelRange
			}
			return 0, errBadLevel
		}
		f = math.Trunc(f)
		if f >= math.MaxInt64 || f < math.MinInt64 {
			return 0, errLevelRange
		}
		return int64(f), nil
	}
	return 0, errBadLevel
}
