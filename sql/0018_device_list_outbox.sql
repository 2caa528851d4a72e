-- 0018: the outbox of device list EDUs (issue #8; server-server API "Device
-- Management"), a mark on remote device lists that need a resync, and the
-- age of to-device messages.
--
-- A change of a local user's devices or cross-signing keys writes, in the
-- transaction of the change, an entry here; a relay (keys.Service) turns
-- each entry into m.device_list_update / m.signing_key_update EDUs in the
-- federation queue's table (federation_outbound_edus) for every server
-- sharing a room with the user, deleting the entry in the same transaction.
-- The queue deletes an EDU only once its destination acknowledged it. No
-- crash between the change's commit and an in-memory enqueue can lose an
-- update any more: whatever is left here is relayed at the next start.
CREATE TABLE device_list_outbox (
    stream_id  BIGINT  PRIMARY KEY,      -- the change's device_lists position: unique, the EDU's stream_id
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,         -- 'device' (m.device_list_update) or 'signing' (m.signing_key_update)
    device_id  TEXT,                     -- kind 'device'
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    prev_ids   BIGINT[] NOT NULL DEFAULT '{}'
);

-- The head of each local user's m.device_list_update chain: the stream_id
-- of the last one, the next one's prev_id, and the stream_id that GET
-- /user/devices answers (a server that resynced continues from there).
CREATE TABLE device_list_outbound_heads (
    user_id    TEXT   PRIMARY KEY,
    stream_id  BIGINT NOT NULL
);

-- Local users' chains start where their device list stands: their
-- latest change (device_keys and cross_signing_keys hold local users only).
INSERT INTO device_list_outbound_heads (user_id, stream_id)
SELECT user_id, max(stream_pos) FROM device_list_changes
WHERE user_id IN (SELECT user_id FROM device_keys UNION SELECT user_id FROM cross_signing_keys)
GROUP BY user_id;

-- device_list_outbox_add appends an entry of kind 'device' (u's device d
-- changed at position p, or was deleted) to u's chain. Callers took p from
-- the device_lists counter, whose row lock orders the writers' commits, so
-- the chain follows the commit order.
CREATE FUNCTION device_list_outbox_add(u TEXT, d TEXT, p BIGINT, del BOOLEAN) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    prev BIGINT;
BEGIN
    INSERT INTO device_list_outbound_heads (user_id, stream_id) VALUES (u, 0) ON CONFLICT DO NOTHING;
    SELECT stream_id INTO prev FROM device_list_outbound_heads WHERE user_id = u FOR UPDATE;
    UPDATE device_list_outbound_heads SET stream_id = p WHERE user_id = u;
    INSERT INTO device_list_outbox (stream_id, user_id, kind, device_id, deleted, prev_ids)
    VALUES (p, u, 'device', d, del, CASE WHEN prev > 0 THEN ARRAY[prev] ELSE '{}'::BIGINT[] END);
END $$;

-- A device with keys that is deleted, whatever the path (logout, device
-- deletion, deactivation, a password change, a replaced dehydrated
-- device): its change (0011) and now its EDU, with the device id.
CREATE OR REPLACE FUNCTION device_keys_deleted() RETURNS trigger AS $$
DECLARE
    p BIGINT;
BEGIN
    UPDATE stream_counters SET pos = pos + 1 WHERE stream = 'device_lists' RETURNING pos INTO p;
    INSERT INTO device_list_changes (stream_pos, user_id) VALUES (p, OLD.user_id);
    PERFORM device_list_outbox_add(OLD.user_id, OLD.device_id, p, TRUE);
    RETURN OLD;
END
$$ LANGUAGE plpgsql;

-- A device with keys that is renamed: /keys/query shows the name
-- (unsigned.device_display_name), so it is a change and an EDU, in the
-- rename's transaction.
CREATE FUNCTION devices_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM device_keys WHERE user_id = NEW.user_id AND device_id = NEW.device_id) THEN
        RETURN NULL;
    END IF;
    UPDATE stream_counters SET pos = pos + 1 WHERE stream = 'device_lists' RETURNING pos INTO p;
    INSERT INTO device_list_changes (stream_pos, user_id) VALUES (p, NEW.user_id);
    PERFORM device_list_outbox_add(NEW.user_id, NEW.device_id, p, FALSE);
    RETURN NULL;
END $$;
CREATE TRIGGER devices_renamed AFTER UPDATE OF display_name ON devices
    FOR EACH ROW WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name) EXECUTE FUNCTION devices_renamed();

-- Remote users whose cached device list has a gap (an m.device_list_update
-- whose prev_id we never saw): a worker fetches the list again (GET
-- /user/devices), retrying with backoff; /keys/query of a marked user asks
-- the user's server directly. The inbound transaction only marks. gen
-- counts the marks: a resync that started before a later mark leaves it.
CREATE TABLE remote_device_list_resyncs (
    user_id     TEXT    PRIMARY KEY,
    gen         BIGINT  NOT NULL DEFAULT 1,
    failures    INTEGER NOT NULL DEFAULT 0,
    retry_at_ts BIGINT  NOT NULL DEFAULT 0
);

-- To-device messages expire after e2ee.to_device_retention undelivered.
ALTER TABLE to_device_messages ADD COLUMN ts BIGINT NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::BIGINT;
CREATE INDEX to_device_messages_ts ON to_device_messages (ts);
