-- 0008: events received over federation (issue #7). The events table keeps
-- every event of a room's graph this server holds, with markers for those
-- that are not part of the timeline clients see:
--   outlier      an event whose place in the graph is not known to this
--                server (auth chains and state from send_join, /state,
--                /event_auth, fetched auth events): stored with its exact
--                bytes, served to servers, never in a timeline or /sync;
--   soft_failed  passed the auth checks against its auth events and the
--                state before it but not against current state (spec
--                "Soft failure"): kept, never shown, never a forward
--                extremity, never current state;
--   rejected     failed the auth checks (the reason): remembered so that it
--                is never fetched again, never used as state or as a
--                prev_event, never shown and never served.
-- Clients see exactly the rows with NOT outlier AND NOT soft_failed AND
-- rejected IS NULL. Every such row still has a seq and a stream_pos (the
-- per-room order and the commit order), so the per-room sequence has gaps
-- where hidden events sit.
--
-- snapshot_nid of an outlier is -1 when the state before it is unknown
-- (the usual case), else the snapshot of the state fetched for it (an
-- outlier that is the prev_event of a received event whose history could
-- not be fetched: "Retrieving missing events").
ALTER TABLE events
    ADD COLUMN outlier     BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN soft_failed BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN rejected    TEXT;

-- The redactions of a room: an event received after a redaction of it
-- is stored redacted, so every inbound event looks its redactions up.
CREATE INDEX events_room_redactions ON events (room_nid) WHERE event_type = 'm.room.redaction';

-- Inbound federation transactions (PUT /_matrix/federation/v1/send/{txnId}):
-- a retried transaction gets the response the first attempt produced and
-- is not processed again (spec: transactions are identified by the origin
-- and the transaction id).
CREATE TABLE federation_inbound_txns (
    origin         TEXT   NOT NULL,
    txn_id         TEXT   NOT NULL,
    response       BYTEA  NOT NULL,             -- the JSON body answered
    created_ts     BIGINT NOT NULL,
    PRIMARY KEY (origin, txn_id)
);
CREATE INDEX federation_inbound_txns_created ON federation_inbound_txns (created_ts);
