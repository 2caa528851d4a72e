package fedclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/id"
)

// MediaResponse is content another server answered with. The caller
// closes Body.
type MediaResponse struct {
	ContentType        string
	ContentDisposition string
	Body               io.ReadCloser
}

// maxMediaMetadata bounds the JSON part of a multipart media answer.
const maxMediaMetadata = 64 << 10

// DownloadMedia fetches one piece of dest's content (server-server API,
// "Content Repository"): GET /_matrix/federation/v1/media/download/{mediaId},
// a multipart/mixed answer whose second part is the content or a Location
// to fetch it from; a server that does not know the endpoint (404
// M_UNRECOGNIZED) is asked at the deprecated /_matrix/media/v3/download
// with allow_remote=false, as the spec requires.
func (c *Client) DownloadMedia(ctx context.Context, dest id.ServerName, mediaID string, wait time.Duration) (*MediaResponse, error) {
	path := fmt.Sprintf("%s/media/download/%s?timeout_ms=%d", fedV1, url.PathEscape(mediaID), wait.Milliseconds())
	res, err := c.DoRaw(ctx, dest, http.MethodGet, path, nil, nil)
	if IsErrcode(err, "M_UNRECOGNIZED") && StatusOf(err) == http.StatusNotFound {
		legacy := fmt.Sprintf("/_matrix/media/v3/download/%s/%s?allow_remote=false&timeout_ms=%d",
			url.PathEscape(string(dest)), url.PathEscape(mediaID), wait.Milliseconds())
		res, err = c.send(ctx, dest, http.MethodGet, legacy, nil, nil, false)
		if err != nil {
			return nil, err
		}
		return &MediaResponse{ContentType: res.Header.Get("Content-Type"),
			ContentDisposition: res.Header.Get("Content-Disposition"), Body: res.Body}, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := c.readMultipartMedia(ctx, res)
	if err != nil {
		res.Body.Close()
		return nil, fmt.Errorf("media %s from %s: %w", mediaID, dest, err)
	}
	return out, nil
}

// readMultipartMedia reads the metadata part of a federation media answer
// and returns the content part (or what its Location points at).
func (c *Client) readMultipartMedia(ctx context.Context, res *http.Response) (*MediaResponse, error) {
	out, location, err := parseMultipartMedia(res.Header.Get("Content-Type"), res.Body)
	if err != nil {
		return nil, err
	}
	if location != "" {
		res.Body.Close()
		return c.fetchLocation(ctx, location)
	}
	out.Body = partBody{Reader: out.Body, closer: res.Body}
	return out, nil
}

// parseMultipartMedia reads a multipart/mixed media answer from body up to
// its content part: the content (Body reads the part, without closing
// anything) or the Location it names instead.
func parseMultipartMedia(contentType string, body io.Reader) (*MediaResponse, string, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" {
		return nil, "", fmt.Errorf("answer is %q, not multipart", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return nil, "", fmt.Errorf("metadata part: %w", err)
	}
	// The metadata object is empty in v1.11+; read it to reach the content.
	if _, err := io.Copy(io.Discard, io.LimitReader(meta, maxMediaMetadata)); err != nil {
		return nil, "", fmt.Errorf("metadata part: %w", err)
	}
	part, err := mr.NextPart()
	if err != nil {
		return nil, "", fmt.Errorf("content part: %w", err)
	}
	if loc := part.Header.Get("Location"); loc != "" {
		return nil, loc, nil
	}
	return &MediaResponse{
		ContentType:        part.Header.Get("Content-Type"),
		ContentDisposition: part.Header.Get("Content-Disposition"),
		Body:               io.NopCloser(part),
	}, "", nil
}

// partBody reads a multipart part and closes the response it is in.
type partBody struct {
	io.Reader
	closer io.Closer
}

func (p partBody) Close() error { return p.closer.Close() }

// fetchLocation follows the Location of a media answer: a plain HTTPS (or,
// with private addresses allowed, HTTP) GET through the same guarded
// dialer as federation requests, so that a remote cannot point us into our
// own network.
func (c *Client) fetchLocation(ctx context.Context, loc string) (*MediaResponse, error) {
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && c.cfg.Federation.AllowPrivateAddresses)) || u.Host == "" {
		return nil, fmt.Errorf("unusable media location %q", loc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	res, err := c.locationClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("media location: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			return nil, &Error{Status: res.StatusCode, Errcode: "M_NOT_FOUND", Message: "media location not found"}
		}
		return nil, errors.New("media location answered " + res.Status)
	}
	return &MediaResponse{ContentType: res.Header.Get("Content-Type"),
		ContentDisposition: res.Header.Get("Content-Disposition"), Body: res.Body}, nil
}

// locationClient is the HTTP client for one media location: media is
// fetched once and then kept, so no connection is kept for reuse.
func (c *Client) locationClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           c.dial,
		TLSClientConfig:       c.tlsBase.Clone(),
		TLSHandshakeTimeout:   c.cfg.Federation.ConnectTimeout,
		ResponseHeaderTimeout: c.cfg.Federation.RequestTimeout,
		DisableKeepAlives:     true,
	}}
}
