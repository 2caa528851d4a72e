package accountdata

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// parseIgnored reads m.ignored_user_list content (spec "Ignoring Users"):
// {"ignored_users": {"@user:server": {}, …}}.
func parseIgnored(raw json.RawMessage) (map[id.UserID]bool, error) {
	var c struct {
		Ignored map[string]json.RawMessage `json:"ignored_users"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, mxerr.BadJSON.Msg("ignored_users must be an object keyed by user id")
	}
	out := make(map[id.UserID]bool, len(c.Ignored))
	for u := range c.Ignored {
		uid, err := id.ParseUserID(u)
		if err != nil {
			return nil, mxerr.BadJSON.Msg("ignored_users: " + u + " is not a user id")
		}
		out[uid] = true
	}
	return out, nil
}

// Ignored returns the users user ignores: their events and invites are
// left out of what user receives.
func (s *Service) Ignored(ctx context.Context, user id.UserID) (map[id.UserID]bool, error) {
	raw, err := s.store.AccountData(ctx, user, "", TypeIgnoredUsers)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ignored, err := parseIgnored(raw)
	if err != nil {
		// Stored before validation existed or by the server: ignore nobody.
		return nil, nil
	}
	return ignored, nil
}
