package federation

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/mxerr"
)

// sendRoutes registers PUT /send/{txnId} (when Deps.Transactions is set).
func (a *API) sendRoutes(r chi.Router) {
	if a.d.Transactions == nil {
		return
	}
	r.Put("/_matrix/federation/v1/send/{txnId}", a.send)
}

// send handles PUT /_matrix/federation/v1/send/{txnId}.
func (a *API) send(w http.ResponseWriter, r *http.Request) {
	txnID := pathParam(r, "txnId")
	if txnID == "" {
		a.writeError(w, r, mxerr.InvalidParam.Msg("empty transaction id"))
		return
	}
	var txn Transaction
	if err := a.decodeJSON(w, r, &txn); err != nil {
		a.writeError(w, r, err)
		return
	}
	resp, err := a.d.Transactions.Process(r.Context(), Origin(r.Context()), txnID, &txn)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(resp))
}
