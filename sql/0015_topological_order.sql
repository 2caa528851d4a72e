-- 0015: the topological order of a room's history (issue #7). /messages
-- and /context page through a room by (topo, seq): topo is the event's
-- depth (the PDU's "depth" field), so that an event received late over
-- federation — a fork, a third server's event, get_missing_events, an
-- outlier promoted into the timeline, history backfilled from another
-- server — appears where it belongs in history and not where it arrived.
-- seq (arrival order) breaks ties; /sync still reads stream_pos order.
--
-- A received event whose depth is not above its known prev_events' gets
-- topo = max(prev topo) + 1 (storage/topological.go): a misbehaving
-- server cannot make its event sort before an event it claims to follow.
ALTER TABLE events ADD COLUMN topo BIGINT;
UPDATE events SET topo = LEAST(GREATEST(COALESCE((convert_from(event_json, 'UTF8')::jsonb ->> 'depth')::numeric, 0), 0),
                               9223372036854775807)::bigint;
ALTER TABLE events ALTER COLUMN topo SET NOT NULL;
CREATE INDEX events_room_topo ON events (room_nid, topo, seq);
