-- 0014: a cache of remote users' device lists (server-server API "Device
-- Management"; client-server "Tracking the device list for a user"), kept
-- for remote users who share a room with a local user so that /keys/query
-- answers them without a round trip. stream_id is the remote server's
-- position of the list: an m.device_list_update whose prev_id is it
-- applies; one whose prev_id is unknown is a gap and the list is fetched
-- again (GET /user/devices).
CREATE TABLE remote_device_lists (
    user_id      TEXT   PRIMARY KEY,
    -- local_server is this server's name: the trigger below tells local
    -- users from remote ones by it.
    local_server TEXT   NOT NULL,
    stream_id    BIGINT NOT NULL,
    -- list: {"devices": {device_id: {"display_name", "keys"}}, "master_key", "self_signing_key"}
    list         JSONB  NOT NULL,
    ts           BIGINT NOT NULL
);

-- A list is only kept while its user shares a joined room with a local
-- user: once not, the user's server stops sending us updates, so a kept
-- list would go stale and be served after a later rejoin. Any membership
-- that stops being a join (the remote user leaving, a local user leaving,
-- kicks and bans, whatever path wrote it) drops the cached lists of the
-- room's members who no longer share a room with a local user. Only cached
-- users are examined.
CREATE FUNCTION remote_device_lists_unshared() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM remote_device_lists r
    WHERE r.user_id IN (SELECT m.user_id FROM room_memberships m WHERE m.room_nid = NEW.room_nid)
      AND NOT EXISTS (
        SELECT 1 FROM room_memberships b JOIN room_memberships a ON a.room_nid = b.room_nid
        WHERE b.user_id = r.user_id AND b.membership = 'join' AND a.membership = 'join'
          AND substr(a.user_id, strpos(a.user_id, ':') + 1) = r.local_server);
    RETURN NULL;
END $$;

CREATE TRIGGER remote_device_lists_unshared AFTER INSERT OR UPDATE OF membership ON room_memberships
FOR EACH ROW WHEN (NEW.membership <> 'join') EXECUTE FUNCTION remote_device_lists_unshared();
