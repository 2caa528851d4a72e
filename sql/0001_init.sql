-- 0001: accounts, devices, tokens, registration tokens and user-interactive
-- auth sessions. Timestamps are milliseconds since the Unix epoch (the unit the
-- Matrix APIs use). Tokens are never stored in clear: only their SHA-256.

CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    password_hash  TEXT,                       -- argon2id PHC string; NULL: no password login
    is_guest       BOOLEAN NOT NULL DEFAULT FALSE,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated    BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts     BIGINT  NOT NULL
);

CREATE TABLE devices (
    user_id        TEXT   NOT NULL REFERENCES users (user_id),
    device_id      TEXT   NOT NULL,
    display_name   TEXT,
    last_seen_ip   TEXT,
    last_seen_ts   BIGINT,
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Refresh tokens rotate: using one issues a new pair whose refresh token
-- points back at it (prev_id); the old one is deleted once the new access
-- token or refresh token is first used (spec: "Refreshing access tokens").
CREATE TABLE refresh_tokens (
    id             BIGSERIAL PRIMARY KEY,
    token_hash     BYTEA  NOT NULL UNIQUE,
    user_id        TEXT   NOT NULL,
    device_id      TEXT   NOT NULL,
    prev_id        BIGINT,
    created_ts     BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

CREATE TABLE access_tokens (
    token_hash     BYTEA  PRIMARY KEY,
    user_id        TEXT   NOT NULL,
    device_id      TEXT   NOT NULL,
    refresh_id     BIGINT REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    expires_ts     BIGINT,                      -- NULL: does not expire
    used           BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts     BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

-- Short-lived single-use tokens for m.login.token (POST /login/get_token).
CREATE TABLE login_tokens (
    token_hash     BYTEA  PRIMARY KEY,
    user_id        TEXT   NOT NULL REFERENCES users (user_id),
    expires_ts     BIGINT NOT NULL
);

-- Admin-created tokens for m.login.registration_token.
CREATE TABLE registration_tokens (
    token          TEXT    PRIMARY KEY,
    uses_allowed   INTEGER,                     -- NULL: unlimited
    pending        INTEGER NOT NULL DEFAULT 0,
    completed      INTEGER NOT NULL DEFAULT 0,
    expiry_ts      BIGINT,                      -- NULL: never expires
    created_ts     BIGINT  NOT NULL
);

-- User-interactive auth sessions live in Postgres so that any node can
-- continue a session another node started.
CREATE TABLE uia_sessions (
    session_id     TEXT   PRIMARY KEY,
    operation      TEXT   NOT NULL,
    user_id        TEXT,                        -- the requester for account operations
    completed      TEXT[] NOT NULL DEFAULT '{}',
    data           JSONB  NOT NULL DEFAULT '{}',
    created_ts     BIGINT NOT NULL,
    expires_ts     BIGINT NOT NULL
);

-- Nonces of shared-secret registration (/_synapse/admin/v1/register), single use.
CREATE TABLE registration_nonces (
    nonce          TEXT   PRIMARY KEY,
    expires_ts     BIGINT NOT NULL
);
