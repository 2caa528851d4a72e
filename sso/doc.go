// Package sso signs people in through the identity provider their
// organisation already runs (issue #10): JWT login (org.matrix.login.jwt,
// verified with golang-jwt against a shared secret, a public key or a JWKS),
// and single sign-on (m.login.sso) through OpenID Connect providers with the
// authorization code flow, PKCE, state and nonce. A successful SSO login
// ends in a short-lived single-use m.login.token handed to an allowed
// client; SSO also completes the m.login.sso stage of user-interactive auth.
//
// The package declares what it needs — the accounts it creates and logs in
// (Accounts), where it keeps pending flows and linked identities (Store),
// and how it talks HTTP to providers (Fetcher, implemented by
// sso/oidcclient) — and imports no edge, storage or driver.
package sso
