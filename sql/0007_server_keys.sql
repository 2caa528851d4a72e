-- 0007: verify keys of other servers (server-server API "Retrieving server
-- keys"), fetched directly or through a notary and kept across restarts so
-- that events stay verifiable while their origin is offline. One row per
-- (server, key id); the signed response the key came from is kept too, to
-- be served again when we act as a notary.

CREATE TABLE server_keys (
    server_name     TEXT   NOT NULL,
    key_id          TEXT   NOT NULL,
    public_key      BYTEA  NOT NULL,
    -- valid_until_ts of the response that listed the key (ms).
    valid_until_ts  BIGINT NOT NULL,
    -- 0 for a current verify key; the old_verify_keys expired_ts otherwise.
    expired_ts      BIGINT NOT NULL DEFAULT 0,
    fetched_ts      BIGINT NOT NULL,
    -- The server's signed key response, canonical JSON, its own
    -- signatures only.
    response        BYTEA  NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
