package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"

	"github.com/parleyhq/parley/netguard"
)

// PreviewConfig configures URL previews.
type PreviewConfig struct {
	Enabled               bool
	AllowPrivateAddresses bool
	MaxBytes              int64
	Timeout               time.Duration
}

// ErrBadPreviewURL is a url parameter that is not an http(s) URL.
var ErrBadPreviewURL = errors.New("media: not an http or https URL")

// previewCacheTTL is how long a fetched preview is reused.
const previewCacheTTL = time.Hour

type previewer struct {
	cfg    PreviewConfig
	client *http.Client
}

func newPreviewer(cfg PreviewConfig) *previewer {
	allow := netguard.Public
	if cfg.AllowPrivateAddresses {
		allow = func(netip.Addr) bool { return true }
	}
	return &previewer{cfg: cfg, client: guardedClient(allow, cfg.Timeout)}
}

// PreviewURL returns the OpenGraph data of a URL (GET …/media/preview_url):
// og:title, og:description, og:image (stored here, as an mxc:// URI) and
// the rest of the page's og:* properties. Previews are cached for an hour.
func (s *Service) PreviewURL(ctx context.Context, rawURL string) (map[string]any, error) {
	if !s.cfg.Preview.Enabled {
		return nil, ErrPreviewDisabled
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrBadPreviewURL
	}
	u.Fragment = ""
	key := u.String()
	if og, found, err := s.stores.Previews.Preview(ctx, key, s.now().Add(-previewCacheTTL)); err != nil {
		return nil, err
	} else if found {
		var out map[string]any
		if err := json.Unmarshal(og, &out); err == nil {
			return out, nil
		}
	}
	og, err := s.fetchPreview(ctx, key)
	if err != nil {
		return nil, err
	}
	if encoded, err := json.Marshal(og); err == nil {
		if err := s.stores.Previews.PutPreview(ctx, key, encoded, s.now()); err != nil {
			s.logger.WarnContext(ctx, "cache preview", slog.String("error", err.Error()))
		}
	}
	return og, nil
}

func (s *Service) fetchPreview(ctx context.Context, target string) (map[string]any, error) {
	res, err := s.get(ctx, target)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	og := map[string]any{}
	ct := baseType(res.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "image/"):
		if err := s.previewImage(ctx, res, og); err != nil {
			return nil, err
		}
	case ct == "text/html" || ct == "application/xhtml+xml":
		page := parseOpenGraph(io.LimitReader(res.Body, s.cfg.Preview.MaxBytes))
		for k, v := range page {
			og[k] = v
		}
		if img, ok := page["og:image"]; ok {
			delete(og, "og:image")
			if ref, err := res.Request.URL.Parse(img); err == nil && (ref.Scheme == "http" || ref.Scheme == "https") {
				s.previewLinkedImage(ctx, ref.String(), og)
			}
		}
	}
	return og, nil
}

// get fetches a URL through the guarded client and maps its failures.
func (s *Service) get(ctx context.Context, target string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Preview.Timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		cancel()
		return nil, ErrBadPreviewURL
	}
	req.Header.Set("User-Agent", "Parley URL preview (Matrix homeserver)")
	req.Header.Set("Accept", "text/html, application/xhtml+xml, image/*;q=0.9, */*;q=0.1")
	res, err := s.preview.client.Do(req)
	if err != nil {
		cancel()
		if isBlocked(err) {
			return nil, ErrPreviewForbidden
		}
		return nil, fmt.Errorf("%w: %v", ErrPreviewFailed, err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("%w: status %d", ErrPreviewFailed, res.StatusCode)
	}
	res.Body = cancelOnClose{res.Body, cancel}
	return res, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// previewLinkedImage fetches a page's og:image; a failure only leaves the
// image out.
func (s *Service) previewLinkedImage(ctx context.Context, target string, og map[string]any) {
	res, err := s.get(ctx, target)
	if err != nil {
		return
	}
	defer res.Body.Close()
	if !strings.HasPrefix(baseType(res.Header.Get("Content-Type")), "image/") {
		return
	}
	_ = s.previewImage(ctx, res, og)
}

// previewImage stores an image response as server-made media and
// describes it with og:image, og:image:type, its dimensions and
// matrix:image:size.
func (s *Service) previewImage(ctx context.Context, res *http.Response, og map[string]any) error {
	ct, err := normalizeContentType(res.Header.Get("Content-Type"))
	if err != nil {
		return ErrPreviewFailed
	}
	body := &limitedBody{r: res.Body, left: s.cfg.Preview.MaxBytes}
	key, size, err := s.stores.Blobs.Put(ctx, body)
	if err != nil {
		if body.err != nil {
			return fmt.Errorf("%w: %v", ErrPreviewFailed, body.err)
		}
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	now := s.now()
	m := Media{MXC: MXC{Server: s.cfg.ServerName, MediaID: NewID()}, ContentType: ct, Size: size, Blob: key, CreatedAt: now, UploadedAt: now}
	if err := s.stores.Metadata.Record(ctx, m, 0); err != nil {
		return err
	}
	og["og:image"] = m.MXC.String()
	og["og:image:type"] = ct
	og["matrix:image:size"] = size
	if thumbnailable(ct) {
		if w, h, err := s.dimensions(ctx, m); err == nil {
			og["og:image:width"], og["og:image:height"] = w, h
		}
	}
	return nil
}

// maxPreviewValue bounds one property's length in a preview.
const maxPreviewValue = 2000

// parseOpenGraph reads the head of an HTML page: og:* meta properties, and
// <title> and the description meta as fallbacks for og:title and
// og:description (spec: the response is OpenGraph data).
func parseOpenGraph(r io.Reader) map[string]string {
	og := map[string]string{}
	var title, description string
	z := html.NewTokenizer(r)
	inTitle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return finishOpenGraph(og, title, description)
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "title":
				inTitle = true
			case "meta":
				attrs := map[string]string{}
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					attrs[strings.ToLower(string(k))] = string(v)
				}
				prop := attrs["property"]
				if prop == "" {
					prop = attrs["name"]
				}
				prop = strings.ToLower(prop)
				content := truncate(attrs["content"])
				switch {
				case strings.HasPrefix(prop, "og:") && content != "":
					if _, seen := og[prop]; !seen {
						og[prop] = content
					}
				case prop == "description" && description == "":
					description = content
				}
			case "body":
				return finishOpenGraph(og, title, description)
			}
		case html.TextToken:
			if inTitle && title == "" {
				title = truncate(strings.TrimSpace(string(z.Text())))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "title":
				inTitle = false
			case "head":
				return finishOpenGraph(og, title, description)
			}
		}
	}
}

func finishOpenGraph(og map[string]string, title, description string) map[string]string {
	if _, ok := og["og:title"]; !ok && title != "" {
		og["og:title"] = title
	}
	if _, ok := og["og:description"]; !ok && description != "" {
		og["og:description"] = description
	}
	return og
}

func truncate(s string) string {
	if len(s) <= maxPreviewValue {
		return s
	}
	s = s[:maxPreviewValue]
	for len(s) > 0 && !utf8ValidEnd(s) {
		s = s[:len(s)-1]
	}
	return s
}

func utf8ValidEnd(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s
}
