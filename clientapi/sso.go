package clientapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/sso"
	"github.com/parleyhq/parley/users"
)

// Cookies of single sign-on. The state cookie ties the provider's callback
// to the browser that started the flow (spec: "guard against unsolicited
// authentication attempts"); the confirm cookie ties the UIA confirmation
// form to the page that showed it, so that another site cannot submit it.
const (
	ssoStateCookie   = "parley_sso_state"
	ssoConfirmCookie = "parley_sso_confirm"
	ssoFallbackPath  = "/_matrix/client/v3/auth/m.login.sso/fallback/web"
)

// mountSSO mounts single sign-on: the redirect endpoints of m.login.sso,
// the providers' callback and the UIA fallback page of m.login.sso.
// Without providers nothing is mounted (the paths answer M_UNRECOGNIZED).
func (a *API) mountSSO(r chi.Router) {
	if a.SSO == nil || a.Users == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Get(v+"/login/sso/redirect", a.ssoRedirect)
		r.Get(v+"/login/sso/redirect/{idpId}", a.ssoRedirect)
		r.Get(v+"/auth/m.login.sso/fallback/web", a.ssoFallback)
		r.Post(v+"/auth/m.login.sso/fallback/web", a.ssoFallbackConfirm)
	}
	r.Get(sso.CallbackPath, a.ssoCallback)
}

// ssoRedirect handles GET /_matrix/client/v3/login/sso/redirect[/{idpId}]:
// a redirect to the provider, or, with several providers and none chosen,
// a page to choose one (the spec allows either).
func (a *API) ssoRedirect(w http.ResponseWriter, r *http.Request) {
	// Every flow is a row until it expires: starting one costs a login
	// attempt of the IP's bucket.
	if err := a.Users.AllowLogin(clientIP(r), ""); err != nil {
		a.writeSSOError(w, r, err)
		return
	}
	redirectURL := r.URL.Query().Get("redirectUrl")
	start, err := a.SSO.StartLogin(r.Context(), chi.URLParam(r, "idpId"), redirectURL)
	switch {
	case errors.Is(err, sso.ErrChooseProvider):
		type choice struct{ Name, URL string }
		var choices []choice
		for _, p := range a.SSO.IdentityProviders() {
			choices = append(choices, choice{p.Name, strings.TrimSuffix(r.URL.Path, "/") + "/" + url.PathEscape(p.ID) +
				"?redirectUrl=" + url.QueryEscape(redirectURL)})
		}
		writeHTML(w, http.StatusOK, ssoPickPage, map[string]any{"Choices": choices})
		return
	case errors.Is(err, sso.ErrUnknownProvider):
		a.writeSSOError(w, r, mxerr.NotFound.Msg("Unknown identity provider"))
		return
	case err != nil:
		a.writeSSOError(w, r, err)
		return
	}
	a.setStateCookie(w, start.State)
	http.Redirect(w, r, start.AuthorizeURL, http.StatusFound)
}

// ssoCallback handles GET /_synapse/client/oidc/callback, where providers
// send the browser back: a login continues to the client with its
// loginToken, a UIA stage ends with the fallback completion page.
func (a *API) ssoCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cb := sso.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), Description: q.Get("error_description")}
	if c, err := r.Cookie(ssoStateCookie); err == nil {
		cb.CookieState = c.Value
	}
	// The cookie has done its job whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: ssoStateCookie, Value: "", Path: sso.CallbackPath, MaxAge: -1, HttpOnly: true})
	res, err := a.SSO.HandleCallback(r.Context(), cb)
	if err != nil {
		a.writeSSOError(w, r, err)
		return
	}
	if res.UIADone {
		writeHTML(w, http.StatusOK, ssoDonePage, nil)
		return
	}
	http.Redirect(w, r, res.RedirectURL, http.StatusFound)
}

// ssoOperations says in words what a UIA operation does, for the page
// that asks the user to confirm it (spec: "SSO during User-Interactive
// Authentication", security considerations).
var ssoOperations = map[string]string{
	users.OpPassword:      "change your password",
	users.OpDeactivate:    "deactivate your account",
	users.OpDeleteDevices: "remove devices from your account",
	users.OpGetLoginToken: "sign in another device to your account",
}

// ssoFallback handles GET /_matrix/client/v3/auth/m.login.sso/fallback/web:
// the page that says what is being confirmed and, once the user agrees,
// goes on to the provider.
func (a *API) ssoFallback(w http.ResponseWriter, r *http.Request) {
	session := r.URL.Query().Get("session")
	if session == "" {
		a.writeSSOError(w, r, mxerr.MissingParam.Msg("Missing session"))
		return
	}
	op, user, err := a.Users.UIASessionInfo(r.Context(), session)
	if err != nil {
		a.writeSSOError(w, r, err)
		return
	}
	action, ok := ssoOperations[op]
	if !ok {
		action = "make a sensitive change to your account"
	}
	providers, err := a.SSO.ProvidersFor(r.Context(), user)
	if err != nil {
		a.writeSSOError(w, r, err)
		return
	}
	csrf := randomCookieValue()
	http.SetCookie(w, &http.Cookie{Name: ssoConfirmCookie, Value: csrf, Path: r.URL.Path, MaxAge: 600,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: strings.HasPrefix(a.clientBaseURL(), "https:")})
	writeHTML(w, http.StatusOK, ssoConfirmPage, map[string]any{
		"Action": action, "User": string(user), "Session": session, "CSRF": csrf,
		"Providers": providers,
	})
}

// ssoFallbackConfirm handles POST /_matrix/client/v3/auth/m.login.sso/fallback/web:
// the confirmation form, checked against its cookie, starts the flow.
func (a *API) ssoFallbackConfirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.writeSSOError(w, r, mxerr.BadJSON.WithStatus(http.StatusBadRequest).Msg("Unreadable form"))
		return
	}
	c, err := r.Cookie(ssoConfirmCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		a.writeSSOError(w, r, mxerr.Forbidden.Msg("The confirmation did not come from this server's page; open the link from your client again"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoConfirmCookie, Value: "", Path: r.URL.Path, MaxAge: -1, HttpOnly: true})
	if err := a.Users.AllowLogin(clientIP(r), ""); err != nil {
		a.writeSSOError(w, r, err)
		return
	}
	start, err := a.SSO.StartUIA(r.Context(), r.PostForm.Get("idp"), r.PostForm.Get("session"))
	switch {
	case errors.Is(err, sso.ErrUnknownProvider), errors.Is(err, sso.ErrChooseProvider):
		a.writeSSOError(w, r, mxerr.NotFound.Msg("Unknown identity provider"))
		return
	case err != nil:
		a.writeSSOError(w, r, err)
		return
	}
	a.setStateCookie(w, start.State)
	http.Redirect(w, r, start.AuthorizeURL, http.StatusSeeOther)
}

// setStateCookie remembers the flow's state in the browser, for the
// callback only. SameSite=Lax: the provider's redirect back is a top-level
// navigation from another site, which Lax cookies accompany.
func (a *API) setStateCookie(w http.ResponseWriter, state string) {
	http.SetCookie(w, &http.Cookie{Name: ssoStateCookie, Value: state, Path: sso.CallbackPath, MaxAge: 600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(a.clientBaseURL(), "https:")})
}

// writeSSOError answers a browser: an HTML page with the Matrix error,
// under the error's status. Unknown errors are logged like writeError's.
func (a *API) writeSSOError(w http.ResponseWriter, r *http.Request, err error) {
	m, known := toMatrixError(err)
	if !known || m.Status >= http.StatusInternalServerError {
		a.Logger.ErrorContext(r.Context(), "sso request failed", slog.String("error", err.Error()))
	}
	if ms, ok := m.Extra["retry_after_ms"]; ok {
		w.Header().Set("Retry-After", retryAfterSeconds(ms))
	}
	writeHTML(w, m.Status, ssoErrorPage, map[string]any{"Code": m.Code, "Message": m.Message})
}

func randomCookieValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The pages are never framed (clickjacking of the confirmation).
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

const ssoPageHead = `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{block "title" .}}Sign in{{end}}</title><style>body{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em}</style></head><body>`

var (
	ssoPickPage = template.Must(template.New("pick").Parse(ssoPageHead +
		`<h1>Sign in</h1><p>Continue with:</p><ul>{{range .Choices}}<li><a href="{{.URL}}">{{.Name}}</a></li>{{end}}</ul></body></html>`))
	ssoConfirmPage = template.Must(template.New("confirm").Parse(ssoPageHead +
		`<h1>Confirm it is you</h1><p>A client is trying to <strong>{{.Action}}</strong> ({{.User}}). To confirm this action, re-authenticate with single sign-on.</p>
<p>If you did not expect this, your account may be compromised: do not continue.</p>
<form method="post"><input type="hidden" name="session" value="{{.Session}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
{{range .Providers}}<button type="submit" name="idp" value="{{.ID}}">Continue with {{.Name}}</button> {{end}}</form></body></html>`))
	// ssoDonePage is the fallback completion page (spec: "Fallback").
	ssoDonePage = template.Must(template.New("done").Parse(ssoPageHead +
		`<h1>Done</h1><p>You may now close this window and return to your client.</p>
<script>
if (window.onAuthDone) {
    window.onAuthDone();
} else if (window.opener && window.opener.postMessage) {
    window.opener.postMessage("authDone", "*");
}
</script></body></html>`))
	ssoErrorPage = template.Must(template.New("error").Parse(ssoPageHead +
		`<h1>Single sign-on failed</h1><p>{{.Message}}</p><p><code>{{.Code}}</code></p></body></html>`))
)
