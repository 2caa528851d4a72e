-- 0004: the content repository's metadata. The bytes live in a blob store
-- (filesystem or S3) under the SHA-256 of the content (blob_key), so that
-- identical uploads share one blob; rows here are what makes a blob
-- visible as media. Timestamps are milliseconds since the Unix epoch.

CREATE TABLE media (
    server_name    TEXT   NOT NULL,
    media_id       TEXT   NOT NULL,
    uploader       TEXT,              -- NULL: made by the server (URL preview images)
    content_type   TEXT   NOT NULL DEFAULT '',
    filename       TEXT,              -- as uploaded; NULL when none was given
    size           BIGINT,            -- NULL while pending (created, not uploaded)
    blob_key       TEXT,              -- NULL while pending
    created_ts     BIGINT NOT NULL,
    uploaded_ts    BIGINT,
    expires_ts     BIGINT,            -- pending only: unused_expires_at
    PRIMARY KEY (server_name, media_id)
);
-- Pending uploads per user (the limit of POST /create) and bytes per user
-- (the quota).
CREATE INDEX media_pending ON media (uploader, expires_ts) WHERE blob_key IS NULL;
CREATE INDEX media_uploaded ON media (uploader) WHERE blob_key IS NOT NULL;

-- Thumbnails, keyed by the size they were made for (a configured size or a
-- dynamic request) and whether they are animated.
CREATE TABLE media_thumbnails (
    server_name    TEXT    NOT NULL,
    media_id       TEXT    NOT NULL,
    width          INT     NOT NULL,
    height         INT     NOT NULL,
    method         TEXT    NOT NULL,
    animated       BOOLEAN NOT NULL,
    content_type   TEXT    NOT NULL,
    size           BIGINT  NOT NULL,
    blob_key       TEXT    NOT NULL,
    created_ts     BIGINT  NOT NULL,
    PRIMARY KEY (server_name, media_id, width, height, method, animated),
    FOREIGN KEY (server_name, media_id) REFERENCES media (server_name, media_id) ON DELETE CASCADE
);

-- URL previews, cached: the OpenGraph object answered for a URL.
CREATE TABLE url_previews (
    url            TEXT   NOT NULL,
    fetched_ts     BIGINT NOT NULL,
    og             JSONB  NOT NULL,
    PRIMARY KEY (url, fetched_ts)
);
