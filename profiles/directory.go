package profiles

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/parleyhq/parley/id"
)

// DirectoryEntry is one user of a directory search result.
type DirectoryEntry struct {
	UserID      id.UserID
	DisplayName string // "" when unset
	AvatarURL   string // "" when unset
}

// SearchResult is POST /user_directory/search's answer.
type SearchResult struct {
	Results []DirectoryEntry
	Limited bool
}

// Directory search limits: the spec's default of 10 and a cap that keeps
// one request cheap.
const (
	DefaultSearchLimit = 10
	MaxSearchLimit     = 100
)

// SearchWords splits a search term into the lower-case words a user id or
// display name word must start with; separators are anything but letters
// and digits, the same rule the store applies to user ids and display
// names.
func SearchWords(term string) []string {
	return strings.FieldsFunc(strings.ToLower(term), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Search searches the user directory (POST /user_directory/search, spec:
// "User directory"): users who share a room with the searcher and users
// joined to public rooms, or every local user when configured. Matching is
// case-insensitive: each word of the term must start a word of the user
// id or of the display name.
func (s *Service) Search(ctx context.Context, searcher id.UserID, term string, limit int) (SearchResult, error) {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)
	words := SearchWords(term)
	if len(words) == 0 {
		return SearchResult{Results: []DirectoryEntry{}}, nil
	}
	found, err := s.dir.SearchUsers(ctx, searcher, words, s.cfg.SearchAllUsers, limit+1)
	if err != nil {
		return SearchResult{}, fmt.Errorf("search users: %w", err)
	}
	res := SearchResult{Results: found}
	if len(found) > limit {
		res.Results, res.Limited = found[:limit], true
	}
	if res.Results == nil {
		res.Results = []DirectoryEntry{}
	}
	return res, nil
}
