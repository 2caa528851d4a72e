-- 0006: receipts and account data (client-server API "Receipts", "Client
-- Config", "Room Tagging", "Ignoring Users"). Each is a sync stream with
-- its own position.

-- stream_counters hands out the positions of the streams that are not the
-- event stream. A writer takes the next position with an UPDATE of the
-- stream's row, in the same transaction as its write: the row lock orders
-- the commits, so every position at or below a committed counter is
-- committed too and a sync reading up to it misses nothing.
CREATE TABLE stream_counters (
    stream TEXT   PRIMARY KEY,
    pos    BIGINT NOT NULL
);
INSERT INTO stream_counters (stream, pos) VALUES ('receipts', 0), ('account_data', 0);

-- receipts keeps the latest receipt per user, type and thread in a room:
-- a sync shows only the latest anyway, so older ones are replaced.
CREATE TABLE receipts (
    room_id      TEXT   NOT NULL,
    user_id      TEXT   NOT NULL,
    receipt_type TEXT   NOT NULL,                -- m.read, m.read.private
    thread_id    TEXT   NOT NULL DEFAULT '',     -- '' = unthreaded
    event_id     TEXT   NOT NULL,
    ts           BIGINT NOT NULL,
    stream_pos   BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_pos);

-- account_data is a user's global (room_id '') and per-room data, one row
-- per type; stream_pos is the position of its latest change.
CREATE TABLE account_data (
    user_id    TEXT   NOT NULL,
    room_id    TEXT   NOT NULL DEFAULT '',
    data_type  TEXT   NOT NULL,
    content    BYTEA  NOT NULL,
    stream_pos BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX account_data_user_stream ON account_data (user_id, stream_pos);
