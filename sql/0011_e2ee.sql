-- 0011: end-to-end encryption (client-server API "End-to-end encryption",
-- "Send-to-Device messaging", "Server-side key backups"). The server keeps
-- public keys, signatures and ciphertext only.

-- Two more streams of the sync token: to-device messages and device list
-- changes (positions taken like the others, see 0006).
INSERT INTO stream_counters (stream, pos) VALUES ('to_device', 0), ('device_lists', 0)
ON CONFLICT (stream) DO NOTHING;

-- device_keys holds each device's identity keys exactly as the device
-- signed them (the signatures must keep verifying). A deleted device takes
-- its keys with it.
CREATE TABLE device_keys (
    user_id    TEXT   NOT NULL,
    device_id  TEXT   NOT NULL,
    key_json   BYTEA  NOT NULL,
    ts         BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- one_time_keys are handed out once each, oldest upload first (spec:
-- /keys/claim); a claim deletes the row.
CREATE TABLE one_time_keys (
    user_id    TEXT   NOT NULL,
    device_id  TEXT   NOT NULL,
    algorithm  TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    key_json   BYTEA  NOT NULL,
    upload_seq BIGSERIAL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX one_time_keys_claim ON one_time_keys (user_id, device_id, algorithm, upload_seq);

-- fallback_keys keep one key per algorithm; used marks it handed out,
-- which /sync reports through device_unused_fallback_key_types.
CREATE TABLE fallback_keys (
    user_id    TEXT    NOT NULL,
    device_id  TEXT    NOT NULL,
    algorithm  TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    key_json   BYTEA   NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- cross_signing_keys: a user's master, self-signing and user-signing keys
-- (one of each, the latest upload).
CREATE TABLE cross_signing_keys (
    user_id    TEXT   NOT NULL,
    usage      TEXT   NOT NULL,          -- master, self_signing, user_signing
    key_json   BYTEA  NOT NULL,
    ts         BIGINT NOT NULL,
    PRIMARY KEY (user_id, usage)
);

-- key_signatures are signatures uploaded with /keys/signatures/upload,
-- merged into the signed object's "signatures" when it is queried.
-- target_key is a device id or a cross-signing public key (unpadded base64).
CREATE TABLE key_signatures (
    target_user   TEXT NOT NULL,
    target_key    TEXT NOT NULL,
    signer_user   TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,         -- ed25519:<key or device id>
    signature     TEXT NOT NULL,
    PRIMARY KEY (target_user, target_key, signer_user, signer_key_id)
);

-- device_list_changes is the device lists stream: one row per change of a
-- user's devices or cross-signing keys (local users, and remote users of
-- whom a server told us). prev_id chains of m.device_list_update are the
-- previous row of the same user.
CREATE TABLE device_list_changes (
    stream_pos BIGINT PRIMARY KEY,
    user_id    TEXT   NOT NULL
);
CREATE INDEX device_list_changes_user ON device_list_changes (user_id, stream_pos);

-- Every incremental sync asks which members of the user's rooms changed
-- membership within its range (device_lists.changed/left): by room and
-- position, not by scanning each room's members.
CREATE INDEX room_memberships_room_stream ON room_memberships (room_nid, stream_pos);

-- A device that had keys is gone: whatever deleted it (logout, device
-- deletion, deactivation, a password change), the users who track the
-- owner's devices must hear of it. The trigger covers every path.
CREATE FUNCTION device_keys_deleted() RETURNS trigger AS $$
DECLARE
    p BIGINT;
BEGIN
    UPDATE stream_counters SET pos = pos + 1 WHERE stream = 'device_lists' RETURNING pos INTO p;
    INSERT INTO device_list_changes (stream_pos, user_id) VALUES (p, OLD.user_id);
    RETURN OLD;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER device_keys_deleted AFTER DELETE ON device_keys
    FOR EACH ROW EXECUTE FUNCTION device_keys_deleted();

-- to_device_messages wait for their device until it syncs with a token
-- past them (acknowledged), then go. A deleted device takes them along.
CREATE TABLE to_device_messages (
    stream_pos BIGINT NOT NULL,
    user_id    TEXT   NOT NULL,
    device_id  TEXT   NOT NULL,
    message    BYTEA  NOT NULL,          -- {"sender","type","content"}
    PRIMARY KEY (user_id, device_id, stream_pos),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

-- to_device_txns makes PUT /sendToDevice idempotent per sending device
-- (local) and m.direct_to_device per origin and message_id (remote).
CREATE TABLE to_device_txns (
    sender     TEXT   NOT NULL,          -- user id, or server name of an origin
    device_id  TEXT   NOT NULL,          -- sending device, '' for an origin
    txn_id     TEXT   NOT NULL,
    ts         BIGINT NOT NULL,
    PRIMARY KEY (sender, device_id, txn_id)
);

-- Server-side key backup: versions of a user's backup and the encrypted
-- session keys in them. etag changes whenever the keys change.
CREATE TABLE room_key_backups (
    user_id    TEXT    NOT NULL,
    version    BIGINT  NOT NULL,
    algorithm  TEXT    NOT NULL,
    auth_data  BYTEA   NOT NULL,
    etag       BIGINT  NOT NULL DEFAULT 0,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE room_key_backup_keys (
    user_id             TEXT    NOT NULL,
    version             BIGINT  NOT NULL,
    room_id             TEXT    NOT NULL,
    session_id          TEXT    NOT NULL,
    first_message_index BIGINT  NOT NULL,
    forwarded_count     BIGINT  NOT NULL,
    is_verified         BOOLEAN NOT NULL,
    session_data        BYTEA   NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES room_key_backups (user_id, version) ON DELETE CASCADE
);

-- Dehydrated devices (MSC3814): at most one per user, a device row of its
-- own with the client's encrypted pickle.
CREATE TABLE dehydrated_devices (
    user_id    TEXT  NOT NULL PRIMARY KEY,
    device_id  TEXT  NOT NULL,
    device_data BYTEA NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
