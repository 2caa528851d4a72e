package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// ErrFilterNotFound: no filter with that id for that user.
var ErrFilterNotFound = errors.New("syncer: filter not found")

// FilterStore keeps uploaded filters.
type FilterStore interface {
	// PutFilter stores a normalised filter definition and returns its id;
	// the same definition uploaded again by the same user gets the same id.
	PutFilter(ctx context.Context, user id.UserID, def []byte) (string, error)
	// Filter returns the definition; ErrFilterNotFound when the user has
	// no filter with that id.
	Filter(ctx context.Context, user id.UserID, filterID string) ([]byte, error)
}

// UploadFilter handles POST /user/{userId}/filter: a user uploads filters
// for themself only (spec: "The access token must be authorized to make
// requests for this user ID").
func (s *Service) UploadFilter(ctx context.Context, requester, owner id.UserID, raw []byte) (string, error) {
	if requester != owner {
		return "", mxerr.Forbidden.Msg("cannot create filters for other users")
	}
	f, err := ParseFilter(raw)
	if err != nil {
		return "", err
	}
	def, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encode filter: %w", err)
	}
	return s.filters.PutFilter(ctx, owner, def)
}

// GetFilter handles GET /user/{userId}/filter/{filterId}.
func (s *Service) GetFilter(ctx context.Context, requester, owner id.UserID, filterID string) (*Filter, error) {
	if requester != owner {
		return nil, mxerr.Forbidden.Msg("cannot read the filters of other users")
	}
	def, err := s.filters.Filter(ctx, owner, filterID)
	if errors.Is(err, ErrFilterNotFound) {
		return nil, mxerr.NotFound.Msg("no such filter")
	}
	if err != nil {
		return nil, err
	}
	var f Filter
	if err := json.Unmarshal(def, &f); err != nil {
		return nil, fmt.Errorf("decode stored filter %s: %w", filterID, err)
	}
	return &f, nil
}

// resolveFilter turns /sync's filter parameter into a filter: inline JSON
// when it starts with "{", else the id of one of the user's filters.
func (s *Service) resolveFilter(ctx context.Context, user id.UserID, param string) (*Filter, error) {
	switch {
	case param == "":
		return nil, nil
	case param[0] == '{':
		return ParseFilter([]byte(param))
	}
	if f := s.filterCache.get(user, param); f != nil {
		return f, nil
	}
	def, err := s.filters.Filter(ctx, user, param)
	if errors.Is(err, ErrFilterNotFound) {
		return nil, mxerr.InvalidParam.Msg("filter: no such filter")
	}
	if err != nil {
		return nil, err
	}
	var f Filter
	if err := json.Unmarshal(def, &f); err != nil {
		return nil, fmt.Errorf("decode stored filter %s: %w", param, err)
	}
	// Shared by every later sync naming it: the builder only reads it.
	s.filterCache.put(user, param, &f)
	return &f, nil
}
