-- 0024: history in the same order on every server (issue #7). /messages
-- and /context read a room by (topo, seq) since 0015: among events of the
-- same depth — the two branches of a fork — the arrival order (seq)
-- decided, and two servers that received the branches in opposite orders
-- showed the room's history in different orders. topo_tie, derived from
-- the event id alone, now orders them (rooms/topological.go): the first 64
-- bits of the MD5 digest of the event id, as a signed big-endian integer.
-- seq only settles what is left (two ids of one depth with the same 64
-- bits) and keeps positions exact. md5(), left() and the text to bit
-- cast are immutable, as a generated column needs: every insert path gets
-- it without naming it, and the rows stored before are filled here.
ALTER TABLE events ADD COLUMN topo_tie BIGINT NOT NULL
    GENERATED ALWAYS AS (('x' || left(md5(event_id), 16))::bit(64)::bigint) STORED;
CREATE INDEX events_room_topo_tie ON events (room_nid, topo, topo_tie, seq);
DROP INDEX events_room_topo;
