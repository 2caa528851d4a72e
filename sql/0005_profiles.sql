-- 0005: user profiles (client-server API "Profiles", v1.16 custom fields).
-- One JSON object per local user holds every field; display name and
-- avatar are generated columns so that the user directory can match and
-- return them without parsing JSON.

CREATE TABLE profiles (
    user_id        TEXT  PRIMARY KEY REFERENCES users (user_id),
    fields         JSONB NOT NULL DEFAULT '{}',
    displayname    TEXT  GENERATED ALWAYS AS (fields ->> 'displayname') STORED,
    avatar_url     TEXT  GENERATED ALWAYS AS (fields ->> 'avatar_url') STORED
);

-- Accounts made before profiles existed get the default a new account gets:
-- the localpart as display name.
INSERT INTO profiles (user_id, fields)
SELECT user_id, jsonb_build_object('displayname', split_part(substr(user_id, 2), ':', 1))
FROM users
ON CONFLICT (user_id) DO NOTHING;


-- The user directory finds rooms by the value of one state key (public
-- join rule, world-readable history).
CREATE INDEX current_state_key ON current_state (key_nid);
