-- 0016: the history of every room's resolved current state, by stream
-- position, and where a room's graph forked (issue #7: clients see the
-- resolved state after a fork).
--
-- When prev_events fork, state resolution may pick an older event for a
-- key, or change a key no new event names; the events' own order then no
-- longer tells what was in force at a stream position. /sync needs that
-- ("the state at since", "the state at the end of the timeline": spec
-- client-server-api GET /sync, use_state_after), so every change of
-- current_state is recorded here, as Synapse's current_state_delta_stream
-- does.
--
-- The writers do not change: statement triggers on current_state insert
-- the deltas unpositioned, and a deferred trigger on rooms positions them
-- at COMMIT (a transaction that changes current_state always moves
-- rooms.snapshot_nid). Positions are assigned last in a transaction,
-- under the stream_position lock, after current_state is written; the
-- room's row lock serialises its writers. So floor_pos, the committed
-- position when the delta was written, is below every position of the
-- transaction and at or above every event of the room stored before it:
-- a delta to an event the transaction wrote takes that event's position
-- (the state before each event of a createRoom is told apart), and one
-- to an older event (resolution picked it) the room's highest position,
-- the transaction's last event.
CREATE TABLE room_state_deltas (
    delta_id       BIGSERIAL PRIMARY KEY,        -- order of the changes at one position
    room_nid       BIGINT NOT NULL,
    stream_pos     BIGINT,                       -- NULL only inside the writing transaction
    key_nid        BIGINT NOT NULL,
    seq            BIGINT,                       -- the event in force after; NULL: the key left the state
    prev_seq       BIGINT,                       -- the event in force before; NULL: the key was absent
    floor_pos      BIGINT NOT NULL DEFAULT 0     -- the committed stream position when written
);
CREATE INDEX room_state_deltas_room_pos ON room_state_deltas (room_nid, stream_pos);
CREATE INDEX room_state_deltas_unstamped ON room_state_deltas (room_nid) WHERE stream_pos IS NULL;

CREATE FUNCTION room_state_deltas_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO room_state_deltas (room_nid, key_nid, seq, prev_seq, floor_pos)
    SELECT n.room_nid, n.key_nid, n.seq, NULL, p.pos FROM new_rows n, stream_position p;
    RETURN NULL;
END $$;

CREATE FUNCTION room_state_deltas_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO room_state_deltas (room_nid, key_nid, seq, prev_seq, floor_pos)
    SELECT n.room_nid, n.key_nid, n.seq, o.seq, p.pos
    FROM new_rows n JOIN old_rows o ON o.room_nid = n.room_nid AND o.key_nid = n.key_nid, stream_position p
    WHERE o.seq IS DISTINCT FROM n.seq;
    RETURN NULL;
END $$;

CREATE FUNCTION room_state_deltas_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO room_state_deltas (room_nid, key_nid, seq, prev_seq, floor_pos)
    SELECT o.room_nid, o.key_nid, NULL, o.seq, p.pos FROM old_rows o, stream_position p;
    RETURN NULL;
END $$;

CREATE TRIGGER current_state_inserted AFTER INSERT ON current_state
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_state_deltas_inserted();
CREATE TRIGGER current_state_updated AFTER UPDATE ON current_state
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION room_state_deltas_updated();
CREATE TRIGGER current_state_deleted AFTER DELETE ON current_state
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION room_state_deltas_deleted();

CREATE FUNCTION room_state_deltas_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    top BIGINT;
BEGIN
    SELECT COALESCE(max(e.stream_pos), 0) INTO top FROM events e WHERE e.room_nid = NEW.room_nid;
    UPDATE room_state_deltas d
    SET stream_pos = COALESCE((SELECT e.stream_pos FROM events e
                               WHERE e.room_nid = d.room_nid AND e.seq = d.seq AND e.stream_pos > d.floor_pos), top)
    WHERE d.room_nid = NEW.room_nid AND d.stream_pos IS NULL;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER rooms_state_deltas_stamp AFTER UPDATE OF snapshot_nid ON rooms
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.snapshot_nid IS DISTINCT FROM NEW.snapshot_nid)
    EXECUTE FUNCTION room_state_deltas_stamp();

-- The history of the rooms stored before this migration, as the events
-- tell it (exact for rooms that never forked), then one correction per
-- key where the current state says otherwise. A key no timeline event set
-- (the state a room was joined with, outliers) has no delta: in force
-- from before any position.
INSERT INTO room_state_deltas (room_nid, stream_pos, key_nid, seq, prev_seq)
SELECT e.room_nid, e.stream_pos, k.key_nid, e.seq, e.replaces_seq
FROM events e JOIN state_keys k ON k.event_type = e.event_type AND k.state_key = e.state_key
WHERE e.state_key IS NOT NULL AND NOT e.outlier AND NOT e.soft_failed AND e.rejected IS NULL
  AND e.stream_pos > 0
ORDER BY e.stream_pos, e.seq;

INSERT INTO room_state_deltas (room_nid, stream_pos, key_nid, seq, prev_seq)
SELECT c.room_nid, (SELECT pos FROM stream_position), c.key_nid, c.seq, last.seq
FROM current_state c
LEFT JOIN LATERAL (
    SELECT d.seq FROM room_state_deltas d WHERE d.room_nid = c.room_nid AND d.key_nid = c.key_nid
    ORDER BY d.stream_pos DESC, d.delta_id DESC LIMIT 1) last ON TRUE
WHERE last.seq IS NOT NULL AND last.seq <> c.seq;

-- Rooms whose graph forked, from the lowest sequence number that may have
-- been built on a fork. In the rooms of this table the state before an
-- event is read from its snapshot for the history visibility rules; in the
-- others (every room only local users write to) the events of one key in
-- sequence order tell it, cheaply. A graph forks when an event does not
-- name every forward extremity: the room has more than one extremity
-- right after it, or had before it (a merge), so the trigger sees every
-- fork; the lowest extremity is at or below every event built off the
-- linear history.
CREATE TABLE room_forks (
    room_nid       BIGINT PRIMARY KEY,
    first_seq      BIGINT NOT NULL
);

CREATE FUNCTION room_forks_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO room_forks (room_nid, first_seq)
    SELECT NEW.room_nid, min(x) FROM unnest(NEW.extremities) AS x
    ON CONFLICT (room_nid) DO UPDATE SET first_seq = LEAST(room_forks.first_seq, EXCLUDED.first_seq);
    RETURN NULL;
END $$;

CREATE TRIGGER rooms_note_fork AFTER UPDATE OF extremities ON rooms
    FOR EACH ROW WHEN (cardinality(NEW.extremities) > 1)
    EXECUTE FUNCTION room_forks_note();

-- Rooms stored before this migration: any room with an event from
-- another server may have forked, from its first such event on.
INSERT INTO room_forks (room_nid, first_seq)
SELECT e.room_nid, min(e.seq) FROM events e
WHERE e.seq > 0 AND NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = e.sender)
GROUP BY e.room_nid;
