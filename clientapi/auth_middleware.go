package clientapi

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/users"
)

type requesterKey struct{}

// requesterFrom returns the authenticated requester that requireAuth put in
// the context. Handlers behind requireAuth always have one.
func requesterFrom(ctx context.Context) users.Requester {
	r, _ := ctx.Value(requesterKey{}).(users.Requester)
	return r
}

// requireAuth authenticates the request's access token and passes the
// requester to next in the context; it answers M_MISSING_TOKEN or
// M_UNKNOWN_TOKEN (with soft_logout for an expired token) itself.
func (a *API) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, err := accessToken(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		req, err := a.Users.Authenticate(r.Context(), token, clientIP(r))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		setRequestUser(r.Context(), req.UserID)
		if a.Presence != nil && !quietSync(r) {
			// Any request is activity (in memory; no write).
			a.Presence.Touch(req.UserID)
		}
		next(w, r.WithContext(context.WithValue(r.Context(), requesterKey{}, req)))
	}
}

// accessToken reads the token from "Authorization: Bearer" or, as older
// clients still do, the access_token query parameter (deprecated; removed
// from the spec in v1.20). Both at once must agree.
func accessToken(r *http.Request) (string, error) {
	var header string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", mxerr.MissingToken.Msg("Authorization header is not a Bearer token")
		}
		header = strings.TrimSpace(tok)
	}
	query := r.URL.Query().Get("access_token")
	switch {
	case header != "" && query != "" && header != query:
		return "", mxerr.UnknownToken.WithStatus(http.StatusBadRequest).Msg("Two different access tokens were given")
	case header != "":
		return header, nil
	case query != "":
		return query, nil
	}
	return "", mxerr.MissingToken.Msg("Missing access token")
}

// clientIP is the peer address of the request, without the port.
// X-Forwarded-For is not trusted: a reverse proxy set-up will need a
// configured list of trusted proxies first.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
