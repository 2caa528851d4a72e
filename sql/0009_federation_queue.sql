-- 0009: the durable outbound federation queue (issue #7). Nothing in it is
-- written by the persisting transaction of an event: a destination's PDUs
-- are read from the events table itself, after a per-destination cursor, so
-- that a crash between COMMIT and the in-memory wake-up loses nothing.
--
-- Which events a destination gets: those of the rooms where it has joined
-- members, inside the "windows" below; which rooms those are is kept up to
-- date by one fan-out pass over the event stream (federation_fanout), which
-- reads membership changes in stream order and opens or closes windows.

-- The fan-out position: every event with stream_pos <= pos has had its
-- membership effect on the windows applied. Senders read no further.
CREATE TABLE federation_fanout (
    singleton      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pos            BIGINT  NOT NULL
);
INSERT INTO federation_fanout (singleton, pos) VALUES (TRUE, 0);

-- One row per remote server we send to.
CREATE TABLE federation_destinations (
    destination    TEXT     PRIMARY KEY,
    pdu_cursor     BIGINT   NOT NULL,            -- every PDU at or below it is acknowledged (or skipped by catch-up)
    -- The transaction in flight, persisted before it is sent, so that a
    -- retry (also after a restart) sends the same transaction under the
    -- same id and the receiver's idempotency holds.
    txn_id         TEXT,
    txn_pdus       BIGINT[],                     -- stream positions of its PDUs
    txn_edus       BIGINT[],                     -- seqs of its EDUs
    txn_cursor     BIGINT,                       -- pdu_cursor once it is acknowledged
    -- Backoff after failures; an inbound request from the destination
    -- resets it.
    failures       INTEGER  NOT NULL DEFAULT 0,
    retry_at_ts    BIGINT   NOT NULL DEFAULT 0,
    -- The node sending to the destination, until when: with several
    -- nodes on one database, one transaction is in flight per destination.
    lease_node     TEXT,
    lease_until_ts BIGINT   NOT NULL DEFAULT 0
);

-- The windows of the stream in which a destination had joined members in a
-- room: it is sent the room's events with since_pos <= stream_pos <=
-- until_pos (NULL: still open). A server that leaves and rejoins gets a
-- second window, so the leave is still delivered when it is behind.
CREATE TABLE federation_destination_rooms (
    destination    TEXT     NOT NULL,
    room_nid       BIGINT   NOT NULL,
    since_pos      BIGINT   NOT NULL,
    until_pos      BIGINT,
    PRIMARY KEY (destination, room_nid, since_pos)
);
CREATE INDEX federation_destination_rooms_room ON federation_destination_rooms (room_nid);

-- EDUs waiting for a destination, oldest first. coalesce_key lets a newer
-- EDU replace an unsent older one (a user's presence, a typing state);
-- expires_ts drops EDUs that are worthless late (typing).
CREATE TABLE federation_outbound_edus (
    destination    TEXT     NOT NULL,
    seq            BIGSERIAL,
    edu_type       TEXT     NOT NULL,
    content        BYTEA    NOT NULL,
    coalesce_key   TEXT,
    expires_ts     BIGINT,
    PRIMARY KEY (destination, seq)
);
CREATE INDEX federation_outbound_edus_key ON federation_outbound_edus (destination, coalesce_key) WHERE coalesce_key IS NOT NULL;

-- The members of a room from one server, without scanning every member
-- row: a user id's server name is everything after its first colon.
CREATE INDEX room_memberships_server ON room_memberships (room_nid, (substr(user_id, strpos(user_id, ':') + 1)));
