package rooms

import "github.com/parleyhq/parley/mxerr"

// ParseDirection reads the dir parameter of /messages and
// timestamp_to_event (clients and servers alike): "b" or "f".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "b":
		return Backward, nil
	case "f":
		return Forward, nil
	}
	return 0, mxerr.InvalidParam.Msg("dir must be b or f")
}
