-- 0025: stream positions from a sequence, without a lock held across the
-- commit (issue #9; docs/performance.md "Sends, positions without a
-- lock").
--
-- Until now every persisting transaction bumped the one stream_position
-- row and kept its lock until its commit had been flushed: stream order
-- was commit order, and the flushes of all writers ran one after another.
-- Positions now come from a sequence (nextval takes no lock that outlives
-- the call), reserved by the writer after it holds its room row locks and
-- after it wrote current_state, and the writer process keeps in memory
-- the "committed up to" frontier below which no reserved position is
-- still in flight (storage/stream_frontier.go); readers read only up to
-- it.
--
-- CACHE 1 (the default, spelled out): values are handed out in the order
-- of the calls across sessions, so a value reserved later is greater —
-- what the frontier and the state-delta floor below rely on.
CREATE SEQUENCE stream_pos_seq AS BIGINT MINVALUE 0 START 0 CACHE 1;
SELECT setval('stream_pos_seq', (SELECT pos FROM stream_position), true);

-- stream_position becomes the highest position handed out, committed or
-- not. The state-delta triggers of 0016 read it as floor_pos: every event
-- of the room stored before (their writers held the room row lock and
-- have committed) is at or below it, and the writing transaction reserves
-- its own positions afterwards, above it. It is not the committed
-- frontier: readers ask the writer process (Rooms.CurrentStreamPos).
DROP TABLE stream_position;
CREATE VIEW stream_position AS
    SELECT COALESCE(pg_sequence_last_value('stream_pos_seq'), 0)::BIGINT AS pos;
