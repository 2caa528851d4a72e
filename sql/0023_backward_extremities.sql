-- 0023: backward extremities (issue #7). A backward extremity is a
-- timeline event whose prev_events are not all in the timeline: the first
-- event held of a room joined over federation, an event accepted after a
-- gap get_missing_events could not close (a server that was down, or that
-- left the room and rejoined), the oldest event of a backfilled batch. The
-- history behind it is a hole that /messages fills from other servers
-- (GET /backfill) when a page reaches it (rooms/backfill_holes.go).
--
-- Holes are found while paging (an event's prev_events are read from the
-- event itself, so rooms stored before this migration are covered too) and
-- recorded here. A row goes when its prev events are held; exhausted_ts
-- marks one no server could fill (they answered, with nothing new): it is
-- not asked again.
CREATE TABLE backward_extremities (
    room_nid       BIGINT NOT NULL,
    event_id       TEXT   NOT NULL,
    found_ts       BIGINT NOT NULL,
    exhausted_ts   BIGINT,
    PRIMARY KEY (room_nid, event_id)
);
