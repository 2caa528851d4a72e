package media

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/id"
)

// ID is the media-id part of an mxc:// URI.
type ID string

func (m ID) String() string { return string(m) }

// maxIDLength bounds a media id; the spec sets no limit, but an id is a
// path segment and a database key, and ours are 24 characters.
const maxIDLength = 255

// ParseID validates a media id: the spec allows only A-Za-z0-9, '_' and
// '-' (spec: "Matrix Content (mxc://) URIs" and the security
// considerations, which forbid anything else to stop directory traversal).
func ParseID(s string) (ID, error) {
	if s == "" || len(s) > maxIDLength {
		return "", errors.New("media id must have 1 to 255 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return "", fmt.Errorf("media id %q: only A-Z, a-z, 0-9, _ and - are allowed", s)
		}
	}
	return ID(s), nil
}

// NewID returns a random media id: 18 bytes of entropy, URL-safe base64.
func NewID() ID {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return ID(base64.RawURLEncoding.EncodeToString(b))
}

// MXC names one piece of content: mxc://<server>/<media id>.
type MXC struct {
	Server  id.ServerName
	MediaID ID
}

// String is the mxc:// URI.
func (m MXC) String() string { return "mxc://" + string(m.Server) + "/" + string(m.MediaID) }

// ParseMXCParts validates the server name and media id of a request path,
// as the spec requires before any lookup.
func ParseMXCParts(server, mediaID string) (MXC, error) {
	s, err := id.ParseServerName(server)
	if err != nil {
		return MXC{}, err
	}
	m, err := ParseID(mediaID)
	if err != nil {
		return MXC{}, err
	}
	return MXC{Server: s, MediaID: m}, nil
}

// ParseMXC parses an mxc:// URI.
func ParseMXC(uri string) (MXC, error) {
	rest, ok := strings.CutPrefix(uri, "mxc://")
	if !ok {
		return MXC{}, fmt.Errorf("%q is not an mxc:// URI", uri)
	}
	server, mediaID, ok := strings.Cut(rest, "/")
	if !ok {
		return MXC{}, fmt.Errorf("%q has no media id", uri)
	}
	return ParseMXCParts(server, mediaID)
}
