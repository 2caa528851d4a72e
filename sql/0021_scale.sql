-- 0021: reads and writes whose cost grew with a room's history or
-- membership (issue #9, "cost grows with the work, not the history";
-- docs/performance.md, "A room of 1,000,000 events").

-- The group commit's last statement (storage/groupcommit.go,
-- assignPositions) moves the room_memberships rows a batch wrote to their
-- events' stream positions, joining on (room_nid, seq): with only the
-- (room_nid, user_id) key, every batch read every membership row of each
-- room it wrote to, a message as much as a join.
CREATE INDEX room_memberships_room_seq ON room_memberships (room_nid, seq);

-- stream_position holds one row. Never analysed, the planner takes it for
-- some two thousand rows (an empty table's page estimate), and the same
-- statement then joined the batch to events by hashing the whole events
-- table: every send batch of a fresh database read every event ever
-- stored (a 20,000-event room: 300 ms a batch). Autovacuum analyses it
-- only after its first fifty updates; analyse it now.
ANALYZE stream_position;
