-- 0014: a cache of remote users' device lists (server-server API "Device
-- Management"; client-server "Tracking the device list for a user"), kept
-- for remote users who share a room with a local user so that /keys/query
-- answers them without a round trip. stream_id is the remote server's
-- position of the list: an m.device_list_update whose prev_id is it
-- applies; one whose prev_id is unknown is a gap and the list is fetched
-- again (GET /user/devices). 0 means "position unknown": the next update
-- resyncs.
CREATE TABLE remote_device_lists (
    user_id   TEXT   PRIMARY KEY,
    stream_id BIGINT NOT NULL,
    -- list: {"devices": {device_id: {"display_name", "keys"}}, "master_key", "self_signing_key"}
    list      JSONB  NOT NULL,
    ts        BIGINT NOT NULL
);
