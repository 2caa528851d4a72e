package rooms

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/parleyhq/parley/mxerr"
)

// EventFilter is the RoomEventFilter of /messages and /context
// (client-server API, "Filtering").
type EventFilter struct {
	Limit                   *int     `json:"limit"`
	Types                   []string `json:"types"`
	NotTypes                []string `json:"not_types"`
	Senders                 []string `json:"senders"`
	NotSenders              []string `json:"not_senders"`
	ContainsURL             *bool    `json:"contains_url"`
	LazyLoadMembers         bool     `json:"lazy_load_members"`
	IncludeRedundantMembers bool     `json:"include_redundant_members"`
	// explicitTypes records whether types was given (an empty list
	// matches nothing; an absent one everything).
	explicitTypes   bool
	explicitSenders bool
}

// ParseEventFilter decodes the filter query parameter ("" = no filter).
func ParseEventFilter(raw string) (*EventFilter, error) {
	f := &EventFilter{}
	if raw == "" {
		return f, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &probe); err != nil || probe == nil {
		return nil, mxerr.BadJSON.Msg("filter must be a JSON object")
	}
	if err := json.Unmarshal([]byte(raw), f); err != nil {
		return nil, mxerr.BadJSON.Msgf("filter: %v", err)
	}
	_, f.explicitTypes = probe["types"]
	_, f.explicitSenders = probe["senders"]
	return f, nil
}

// typeMatches is the filter's type pattern match: "*" matches any run of
// characters.
func typeMatches(pattern, t string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == t
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(t, parts[0]) {
		return false
	}
	t = t[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(t, p)
		}
		j := strings.Index(t, p)
		if j < 0 {
			return false
		}
		t = t[j+len(p):]
	}
	return true
}

// Matches reports whether the filter keeps the event.
func (f *EventFilter) Matches(se *StoredEvent) bool {
	ev := se.Event
	anyType := func(list []string) bool {
		return slices.ContainsFunc(list, func(p string) bool { return typeMatches(p, ev.Type()) })
	}
	if anyType(f.NotTypes) || (f.explicitTypes && !anyType(f.Types)) {
		return false
	}
	sender := string(ev.Sender())
	if slices.Contains(f.NotSenders, sender) || (f.explicitSenders && !slices.Contains(f.Senders, sender)) {
		return false
	}
	if f.ContainsURL != nil {
		var c struct {
			URL *string `json:"url"`
		}
		_ = json.Unmarshal(ev.Content(), &c)
		if (c.URL != nil) != *f.ContainsURL {
			return false
		}
	}
	return true
}
