package app

import (
	"net/http"
)

// federationHandler serves the federation listener. The Server-Server API
// arrives with issue #7; until then every request gets the spec's answer
// for an endpoint a server does not know.
func federationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
	})
}
