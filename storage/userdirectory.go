package storage

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/profiles"
)

// searchUsers is the user directory: local, not deactivated accounts that
// the searcher may find (spec: "User directory"; all when $3) and that
// match every search word ($2): each word starts a word of the user id or
// of the display name (words split on anything but letters and digits).
// It reads current membership and profiles directly, so it is never stale;
// the join by room uses room_memberships' primary key, the public-room
// test current_state by key.
//
// Ranking: a name or localpart starting with the first word, then users
// with a display name, then by name.
const searchUsers = `
WITH visible AS (
    SELECT other.user_id
    FROM room_memberships me
    JOIN room_memberships other ON other.room_nid = me.room_nid AND other.membership = 'join'
    WHERE me.user_id = $1 AND me.membership = 'join'
  UNION
    SELECT m.user_id
    FROM room_memberships m
    WHERE m.membership = 'join' AND m.room_nid IN (
        SELECT r.room_nid FROM rooms r WHERE r.published
      UNION
        SELECT c.room_nid
        FROM state_keys k
        JOIN current_state c ON c.key_nid = k.key_nid
        JOIN events e ON e.room_nid = c.room_nid AND e.seq = c.seq
        WHERE k.state_key = ''
          AND ((k.event_type = 'm.room.join_rules'
                AND convert_from(e.event_json, 'UTF8')::jsonb -> 'content' ->> 'join_rule' = 'public')
            OR (k.event_type = 'm.room.history_visibility'
                AND convert_from(e.event_json, 'UTF8')::jsonb -> 'content' ->> 'history_visibility' = 'world_readable'))
    )
)
SELECT u.user_id, COALESCE(p.displayname, ''), COALESCE(p.avatar_url, '')
FROM users u
LEFT JOIN profiles p ON p.user_id = u.user_id
WHERE NOT u.deactivated
  AND ($3 OR u.user_id IN (SELECT user_id FROM visible))
  AND NOT EXISTS (
      SELECT 1 FROM unnest($2::text[]) w
      WHERE NOT EXISTS (
          SELECT 1
          FROM unnest(regexp_split_to_array(lower(u.user_id), '[^[:alnum:]]+')
                   || regexp_split_to_array(lower(COALESCE(p.displayname, '')), '[^[:alnum:]]+')) t
          WHERE t <> '' AND starts_with(t, w)))
ORDER BY (starts_with(lower(COALESCE(p.displayname, '')), $2[1])
          OR starts_with(lower(u.user_id), '@' || $2[1])) DESC,
         p.displayname IS NULL,
         lower(COALESCE(p.displayname, u.user_id)),
         u.user_id
LIMIT $4`

// SearchUsers implements profiles.DirectoryStore.
func (s *Profiles) SearchUsers(ctx context.Context, searcher id.UserID, words []string, all bool, limit int) ([]profiles.DirectoryEntry, error) {
	rows, err := s.pool.Query(ctx, searchUsers, searcher, words, all, limit)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	defer rows.Close()
	var out []profiles.DirectoryEntry
	for rows.Next() {
		var e profiles.DirectoryEntry
		if err := rows.Scan(&e.UserID, &e.DisplayName, &e.AvatarURL); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return out, nil
}
