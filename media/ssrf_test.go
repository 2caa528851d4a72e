package media

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// listenOn serves h on a given loopback address (127.0.0.2 is as
// loopback as 127.0.0.1 on Linux).
func listenOn(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// The check runs at dial time, on every hop: a redirect from an allowed
// address to a refused one is refused, as is a name that resolves to a
// refused address.
func TestGuardedClientChecksEveryConnection(t *testing.T) {
	secret := listenOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "internal secret")
	}))
	open := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, secret+"/", http.StatusFound)
		default:
			io.WriteString(w, "public page")
		}
	}))
	// Stand-in for "the public internet": only 127.0.0.1 is allowed.
	allow := func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
	client := guardedClient(allow, 5*time.Second)
	get := func(u string) (string, error) {
		res, err := client.Get(u)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	t.Run("allowed address", func(t *testing.T) {
		if body, err := get(open + "/"); err != nil || body != "public page" {
			t.Fatalf("got %q, %v", body, err)
		}
	})
	t.Run("refused address", func(t *testing.T) {
		if _, err := get(secret + "/"); !isBlocked(err) {
			t.Errorf("err %v, want the dialer's refusal", err)
		}
	})
	t.Run("redirect to a refused address", func(t *testing.T) {
		body, err := get(open + "/redirect")
		if !isBlocked(err) || strings.Contains(body, "secret") {
			t.Errorf("got %q, %v; want the redirect refused", body, err)
		}
	})
	t.Run("a name resolving to a refused address", func(t *testing.T) {
		// Here only 127.0.0.2 is allowed, and localhost resolves to
		// 127.0.0.1 and ::1: the name itself says nothing.
		only2 := guardedClient(func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") }, 5*time.Second)
		res, err := only2.Get(strings.Replace(open, "127.0.0.1", "localhost", 1) + "/")
		if err == nil {
			res.Body.Close()
		}
		if !isBlocked(err) {
			t.Errorf("err %v, want refused", err)
		}
	})
	t.Run("redirect to another scheme", func(t *testing.T) {
		ftp := listenOn(t, "127.0.0.1", http.RedirectHandler("file:///etc/passwd", http.StatusFound))
		if _, err := get(ftp); err == nil {
			t.Error("a redirect to file:// was followed")
		}
	})
}

func TestParseOpenGraph(t *testing.T) {
	page := `<!doctype html><html><head>
<title> Fallback title </title>
<meta name="description" content="Fallback description">
<meta property="og:title" content="Real title">
<meta property="OG:Image" content="/img.png">
<meta property="og:title" content="Second title ignored">
</head><body><meta property="og:description" content="in body, ignored"></body></html>`
	og := parseOpenGraph(strings.NewReader(page))
	for k, want := range map[string]string{
		"og:title":       "Real title",
		"og:description": "Fallback description",
		"og:image":       "/img.png",
	} {
		if og[k] != want {
			t.Errorf("%s = %q, want %q", k, og[k], want)
		}
	}
	og = parseOpenGraph(strings.NewReader("<html><head><title>Only title</title></head></html>"))
	if og["og:title"] != "Only title" || len(og) != 1 {
		t.Errorf("got %v", og)
	}
	long := strings.Repeat("é", 3000)
	og = parseOpenGraph(strings.NewReader(`<meta property="og:title" content="` + long + `">`))
	if n := len(og["og:title"]); n > maxPreviewValue || n == 0 {
		t.Errorf("long value kept %d bytes", n)
	}
}
