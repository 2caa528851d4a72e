-- 0002: rooms, their events, state snapshots, memberships, client
-- transaction ids and room aliases. Everything of a room is keyed by its
-- room_nid first, so that a room can live on one shard later. Events are
-- addressed inside a room by their per-room sequence number (seq), which is
-- gap-free and assigned in the persisting transaction.

-- The global stream position: one row, bumped as the last statement of
-- every persisting transaction, so that stream order equals commit order
-- and "every event with stream_pos <= N is committed" holds for readers.
CREATE TABLE stream_position (
    singleton      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pos            BIGINT  NOT NULL
);
INSERT INTO stream_position (singleton, pos) VALUES (TRUE, 0);

CREATE TABLE rooms (
    room_nid       BIGSERIAL PRIMARY KEY,
    room_id        TEXT    NOT NULL UNIQUE,
    room_version   TEXT    NOT NULL,
    last_seq       BIGINT  NOT NULL DEFAULT 0,   -- the per-room sequence counter; its row lock serialises writers
    snapshot_nid   BIGINT  NOT NULL DEFAULT 0,   -- current state; 0 = empty
    extremities    BIGINT[] NOT NULL DEFAULT '{}', -- seqs of the forward extremities
    published      BOOLEAN NOT NULL DEFAULT FALSE, -- listed in the public room directory
    created_ts     BIGINT  NOT NULL
);

-- Interned (event type, state key) pairs.
CREATE TABLE state_keys (
    key_nid        BIGSERIAL PRIMARY KEY,
    event_type     TEXT NOT NULL,
    state_key      TEXT NOT NULL,
    UNIQUE (event_type, state_key)
);

-- State snapshots share structure: a full one lists every entry, a delta
-- lists the entries that differ from its parent. Chains stay short (the
-- store writes a full snapshot when a chain would grow past its limit).
CREATE TABLE state_snapshots (
    snapshot_nid   BIGSERIAL PRIMARY KEY,
    room_nid       BIGINT   NOT NULL,
    parent_nid     BIGINT,                       -- NULL: a full snapshot
    chain_len      INTEGER  NOT NULL,            -- deltas between this one and its full ancestor
    key_nids       BIGINT[] NOT NULL,
    seqs           BIGINT[] NOT NULL
);
CREATE INDEX state_snapshots_room ON state_snapshots (room_nid);

CREATE TABLE events (
    room_nid       BIGINT  NOT NULL,
    seq            BIGINT  NOT NULL,             -- per-room order
    stream_pos     BIGINT  NOT NULL,             -- global order (= commit order)
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    state_key      TEXT,
    sender         TEXT    NOT NULL,
    membership     TEXT,                         -- content.membership of m.room.member
    origin_ts      BIGINT  NOT NULL,
    snapshot_nid   BIGINT  NOT NULL,             -- the room state before this event
    replaces_seq   BIGINT,                       -- the state event this one replaced (prev_content)
    redacted_by    BIGINT,                       -- seq of the redaction applied to it
    txn_device     TEXT,                         -- device and transaction id of a local client send
    txn_id         TEXT,
    event_json     BYTEA   NOT NULL,             -- the exact bytes of the PDU
    PRIMARY KEY (room_nid, seq),
    UNIQUE (event_id)
);
CREATE INDEX events_stream ON events (stream_pos);
CREATE INDEX events_room_stream ON events (room_nid, stream_pos);
CREATE INDEX events_room_ts ON events (room_nid, origin_ts);
CREATE INDEX events_member_changes ON events (state_key, stream_pos) WHERE event_type = 'm.room.member';
-- The state history of one key (history visibility and membership at an
-- event, for the visibility rules).
CREATE INDEX events_room_state ON events (room_nid, event_type, state_key, seq) WHERE state_key IS NOT NULL;

-- The materialised current state of every room.
CREATE TABLE current_state (
    room_nid       BIGINT NOT NULL,
    key_nid        BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    PRIMARY KEY (room_nid, key_nid)
);

-- Every user's current membership of every room, for "rooms of a user" and
-- "members of a room" without reading state.
CREATE TABLE room_memberships (
    room_nid       BIGINT  NOT NULL,
    user_id        TEXT    NOT NULL,
    membership     TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    stream_pos     BIGINT  NOT NULL,
    forgotten      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_nid, user_id)
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, membership);

-- Client transaction ids (PUT …/send/{type}/{txnId}, …/redact/…/{txnId}):
-- a retry on the same device returns the event the first attempt created.
CREATE TABLE client_txns (
    user_id        TEXT   NOT NULL,
    device_id      TEXT   NOT NULL,
    txn_id         TEXT   NOT NULL,
    room_nid       BIGINT NOT NULL,
    event_id       TEXT   NOT NULL,
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

CREATE TABLE room_aliases (
    alias          TEXT   PRIMARY KEY,
    room_id        TEXT   NOT NULL,             -- by id: createRoom reserves the alias before the room row exists
    creator        TEXT   NOT NULL,
    created_ts     BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);
