-- 0003: sync filters (POST /user/{userId}/filter). A filter is stored in
-- its normalised JSON form; uploading the same filter again returns the
-- same id (clients upload their filter at every start), hence the hash.

CREATE TABLE sync_filters (
    user_id        TEXT   NOT NULL,
    filter_id      BIGINT NOT NULL,
    filter_hash    BYTEA  NOT NULL,             -- SHA-256 of filter_json
    filter_json    BYTEA  NOT NULL,
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (user_id, filter_id),
    UNIQUE (user_id, filter_hash)
);

-- Filter ids are small decimal numbers, unique per server (a global
-- sequence is simplest and never reuses an id).
CREATE SEQUENCE sync_filter_ids;
