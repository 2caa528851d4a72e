package media

import (
	"net/url"
	"strconv"
	"time"

	"github.com/parleyhq/parley/mxerr"
)

// Bounds of timeout_ms, how long a download or thumbnail request waits
// for media that is still being uploaded (spec default 20 s).
const (
	DefaultWait = 20 * time.Second
	MaxWait     = 60 * time.Second
)

// ParseWait reads timeout_ms of a download or thumbnail request, the same
// for clients and for other servers: absent is DefaultWait, more than
// MaxWait is MaxWait.
func ParseWait(q url.Values) (time.Duration, error) {
	raw := q.Get("timeout_ms")
	if raw == "" {
		return DefaultWait, nil
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ms < 0 {
		return 0, mxerr.InvalidParam.Msg("timeout_ms must be a non-negative integer")
	}
	return min(time.Duration(ms)*time.Millisecond, MaxWait), nil
}

// ParseThumbnailQuery reads width, height, method and animated of a
// thumbnail request (client-server and federation media APIs alike).
func ParseThumbnailQuery(q url.Values) (ThumbnailRequest, error) {
	var req ThumbnailRequest
	for _, p := range []struct {
		name string
		dst  *int
	}{{"width", &req.Width}, {"height", &req.Height}} {
		raw := q.Get(p.name)
		if raw == "" {
			return req, mxerr.MissingParam.Msgf("%s is required", p.name)
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return req, mxerr.InvalidParam.Msgf("%s must be a positive integer", p.name)
		}
		*p.dst = n
	}
	req.Method = q.Get("method")
	if req.Method != "" && req.Method != MethodCrop && req.Method != MethodScale {
		return req, mxerr.InvalidParam.Msg("method must be crop or scale")
	}
	if raw := q.Get("animated"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return req, mxerr.InvalidParam.Msg("animated must be true or false")
		}
		req.Animated = b
	}
	return req, nil
}
