-- Single sign-on (issue #10): identities at external providers linked to
-- accounts, and pending OpenID Connect authorizations.

-- One row per identity at a provider (OIDC: the configured subject claim,
-- "sub" by default). An account may have several; an identity one account.
CREATE TABLE user_external_ids (
    auth_provider  TEXT   NOT NULL,
    external_id    TEXT   NOT NULL,
    user_id        TEXT   NOT NULL REFERENCES users (user_id),
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (auth_provider, external_id)
);
CREATE INDEX user_external_ids_user ON user_external_ids (user_id);

-- A browser's authorization in progress, from /login/sso/redirect (or the
-- UIA fallback) to the provider's callback; keyed by the SHA-256 of the
-- state, consumed on use, expired after a few minutes. Any node can take
-- the callback.
CREATE TABLE sso_flows (
    state_hash     BYTEA  PRIMARY KEY,
    provider       TEXT   NOT NULL,
    nonce          TEXT   NOT NULL,
    code_verifier  TEXT   NOT NULL,
    redirect_url   TEXT   NOT NULL DEFAULT '',  -- login: the client the token goes to
    uia_session    TEXT   NOT NULL DEFAULT '',  -- UIA: the session whose m.login.sso stage completes
    expires_ts     BIGINT NOT NULL
);
CREATE INDEX sso_flows_expiry ON sso_flows (expires_ts);
