package oidcclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// A provider on loopback is refused unless private addresses are allowed;
// redirects to loopback are refused too.
func TestPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			u, p, _ := r.BasicAuth()
			_ = r.ParseForm()
			_, _ = w.Write([]byte(`{"user":"` + u + `","pass":"` + p + `","code":"` + r.PostForm.Get("code") + `"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, err := New(false, 5*time.Second).Get(ctx, srv.URL); !errors.Is(err, ErrBlocked) {
		t.Fatalf("loopback fetched without allow_private_addresses: %v", err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if _, err := New(false, 5*time.Second).Get(ctx, "http://localhost:"+port); !errors.Is(err, ErrBlocked) {
		t.Fatalf("a name resolving to loopback fetched: %v", err)
	}
	c := New(true, 5*time.Second)
	body, err := c.Get(ctx, srv.URL)
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("allowed: %s %v", body, err)
	}
	body, err = c.PostForm(ctx, srv.URL, url.Values{"code": {"c1"}}, "id", "secret")
	if err != nil || string(body) != `{"user":"id","pass":"secret","code":"c1"}` {
		t.Fatalf("post: %s %v", body, err)
	}
}
