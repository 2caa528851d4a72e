package mxerr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestDerivedErrorsMatchTheirSentinel(t *testing.T) {
	derived := Forbidden.Msg("not in room")
	wrapped := fmt.Errorf("send event: %w", derived)
	if !errors.Is(wrapped, Forbidden) {
		t.Error("a wrapped Forbidden.Msg does not match Forbidden")
	}
	if errors.Is(wrapped, NotFound) {
		t.Error("Forbidden matches NotFound")
	}
	if Forbidden.Message != "Forbidden" || derived.Message != "not in room" {
		t.Errorf("Msg changed the sentinel: %q / %q", Forbidden.Message, derived.Message)
	}
	if got, ok := As(wrapped); !ok || got.Code != "M_FORBIDDEN" || got.Status != http.StatusForbidden {
		t.Errorf("As = %+v, %v", got, ok)
	}
	if _, ok := As(errors.New("plain")); ok {
		t.Error("As found a Matrix error in a plain error")
	}
}

func TestBodyCarriesExtrasWithoutSharingThem(t *testing.T) {
	limited := LimitExceeded.With("retry_after_ms", int64(2000))
	again := limited.With("other", true)
	body := limited.Body()
	if body["errcode"] != "M_LIMIT_EXCEEDED" || body["retry_after_ms"] != int64(2000) || body["error"] != "Too many requests" {
		t.Errorf("body = %v", body)
	}
	if _, leaked := body["other"]; leaked {
		t.Error("With on a copy changed the original's extras")
	}
	if len(LimitExceeded.Extra) != 0 || len(again.Extra) != 2 {
		t.Errorf("extras: sentinel %v, copy %v", LimitExceeded.Extra, again.Extra)
	}
	if got := Unrecognized.WithStatus(http.StatusMethodNotAllowed); got.Status != 405 || Unrecognized.Status != 404 {
		t.Errorf("WithStatus: %d, sentinel %d", got.Status, Unrecognized.Status)
	}
}
