package fedclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/federation/queue"
)

func TestSendTransaction(t *testing.T) {
	ca := fedtest.NewCA(t)
	var status int
	var gotPath string
	var gotBody queue.TxnBody
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.EscapedPath()
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &gotBody)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(`{"pdus":{"$a":{},"$b":{"error":"rejected"}}}`))
			return
		}
		if status == http.StatusTooManyRequests {
			_, _ = w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":7000}`))
			return
		}
		_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"no"}`))
	}), "hs2.test")
	c, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	body := &queue.TxnBody{Origin: "hs1.test", OriginServerTS: 5, PDUs: []json.RawMessage{json.RawMessage(`{"type":"m.room.message"}`)},
		EDUs: []queue.EDU{{Type: "m.typing", Content: json.RawMessage(`{"typing":true}`)}}}

	for _, c2 := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusOK, false},
		{http.StatusBadRequest, true},
		{http.StatusForbidden, true},
		{http.StatusRequestEntityTooLarge, true},
		{http.StatusUnauthorized, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
	} {
		status = c2.status
		resp, err := c.SendTransaction(context.Background(), "hs2.test", "t/1", body)
		var perm *queue.PermanentError
		switch {
		case c2.status == http.StatusOK:
			if err != nil || resp.PDUs["$b"].Error != "rejected" || len(resp.PDUs) != 2 {
				t.Fatalf("200: %+v, %v", resp, err)
			}
			if gotPath != "/_matrix/federation/v1/send/t%2F1" || gotBody.Origin != "hs1.test" || len(gotBody.PDUs) != 1 ||
				len(gotBody.EDUs) != 1 || gotBody.EDUs[0].Type != "m.typing" {
				t.Fatalf("sent %s %+v", gotPath, gotBody)
			}
		case err == nil:
			t.Fatalf("%d: no error", c2.status)
		case errors.As(err, &perm) != c2.permanent:
			t.Fatalf("%d: permanent %v, want %v (%v)", c2.status, !c2.permanent, c2.permanent, err)
		}
		var wait *queue.RetryAfterError
		if got := errors.As(err, &wait); got != (c2.status == http.StatusTooManyRequests) ||
			(got && wait.After != 7*time.Second) {
			t.Fatalf("%d: retry after %v (%v)", c2.status, wait, err)
		}
	}
}
