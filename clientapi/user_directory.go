package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/mxerr"
)

// userDirectoryResult is one entry of POST /user_directory/search.
type userDirectoryResult struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// searchUserDirectory handles POST /_matrix/client/v3/user_directory/search.
func (a *API) searchUserDirectory(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SearchTerm *string `json:"search_term"`
		Limit      int     `json:"limit"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.SearchTerm == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("search_term is required"))
		return
	}
	res, err := a.Profiles.Search(r.Context(), requesterFrom(r.Context()).UserID, *body.SearchTerm, body.Limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]userDirectoryResult, 0, len(res.Results))
	for _, e := range res.Results {
		out = append(out, userDirectoryResult{UserID: string(e.UserID), DisplayName: e.DisplayName, AvatarURL: e.AvatarURL})
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out, "limited": res.Limited})
}
