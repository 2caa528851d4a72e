package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/mxerr"
)

// mountRoomKeys mounts server-side key backup (client-server API
// "Server-side key backups") under prefix v.
func (a *API) mountRoomKeys(r chi.Router, v string) {
	r.Post(v+"/room_keys/version", a.requireAuth(a.createBackup))
	r.Get(v+"/room_keys/version", a.requireAuth(a.getBackup))
	r.Get(v+"/room_keys/version/{version}", a.requireAuth(a.getBackup))
	r.Put(v+"/room_keys/version/{version}", a.requireAuth(a.updateBackup))
	r.Delete(v+"/room_keys/version/{version}", a.requireAuth(a.deleteBackup))
	for _, p := range []string{"/room_keys/keys", "/room_keys/keys/{roomId}", "/room_keys/keys/{roomId}/{sessionId}"} {
		r.Put(v+p, a.requireAuth(a.putRoomKeys))
		r.Get(v+p, a.requireAuth(a.getRoomKeys))
		r.Delete(v+p, a.requireAuth(a.deleteRoomKeys))
	}
}

// backupBody is the body of POST and PUT /room_keys/version.
type backupBody struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   string          `json:"version"`
}

// createBackup handles POST /_matrix/client/v3/room_keys/version.
func (a *API) createBackup(w http.ResponseWriter, r *http.Request) {
	var body backupBody
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	v, err := a.Keys.CreateBackup(r.Context(), requesterFrom(r.Context()).UserID, body.Algorithm, body.AuthData)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"version": v})
}

// getBackup handles GET /_matrix/client/v3/room_keys/version[/{version}].
func (a *API) getBackup(w http.ResponseWriter, r *http.Request) {
	info, err := a.Keys.Backup(r.Context(), requesterFrom(r.Context()).UserID, pathParam(r, "version"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// updateBackup handles PUT /_matrix/client/v3/room_keys/version/{version}.
func (a *API) updateBackup(w http.ResponseWriter, r *http.Request) {
	var body backupBody
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	err := a.Keys.UpdateBackup(r.Context(), requesterFrom(r.Context()).UserID, pathParam(r, "version"),
		body.Algorithm, body.Version, body.AuthData)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// deleteBackup handles DELETE /_matrix/client/v3/room_keys/version/{version}.
func (a *API) deleteBackup(w http.ResponseWriter, r *http.Request) {
	if err := a.Keys.DeleteBackup(r.Context(), requesterFrom(r.Context()).UserID, pathParam(r, "version")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// roomKeysTarget reads ?version and the optional {roomId}/{sessionId}.
func roomKeysTarget(r *http.Request) (version string, room id.RoomID, session string, err error) {
	version = r.URL.Query().Get("version")
	if version == "" {
		return "", "", "", mxerr.MissingParam.Msg("Missing version")
	}
	if pathParam(r, "roomId") != "" {
		if room, err = roomParam(r); err != nil {
			return "", "", "", err
		}
	}
	return version, room, pathParam(r, "sessionId"), nil
}

// putRoomKeys handles PUT /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) putRoomKeys(w http.ResponseWriter, r *http.Request) {
	version, room, session, err := roomKeysTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var rooms map[id.RoomID]keys.RoomKeyBackup
	switch {
	case session != "":
		var d keys.KeyBackupData
		if err = a.decodeJSON(w, r, &d); err == nil {
			rooms = map[id.RoomID]keys.RoomKeyBackup{room: {Sessions: map[string]keys.KeyBackupData{session: d}}}
		}
	case room != "":
		var rk keys.RoomKeyBackup
		if err = a.decodeJSON(w, r, &rk); err == nil {
			rooms = map[id.RoomID]keys.RoomKeyBackup{room: rk}
		}
	default:
		var body struct {
			Rooms map[id.RoomID]keys.RoomKeyBackup `json:"rooms"`
		}
		err = a.decodeJSON(w, r, &body)
		rooms = body.Rooms
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	counts, err := a.Keys.PutBackupKeys(r.Context(), requesterFrom(r.Context()).UserID, version, rooms)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, counts)
}

// getRoomKeys handles GET /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) getRoomKeys(w http.ResponseWriter, r *http.Request) {
	version, room, session, err := roomKeysTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rooms, err := a.Keys.BackupKeys(r.Context(), requesterFrom(r.Context()).UserID, version, room, session)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	switch {
	case session != "":
		d, ok := rooms[room].Sessions[session]
		if !ok {
			a.writeError(w, r, mxerr.NotFound.Msg("No backed-up key for this session"))
			return
		}
		writeJSON(w, http.StatusOK, d)
	case room != "":
		rk, ok := rooms[room]
		if !ok {
			rk = keys.RoomKeyBackup{Sessions: map[string]keys.KeyBackupData{}}
		}
		writeJSON(w, http.StatusOK, rk)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
	}
}

// deleteRoomKeys handles DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) deleteRoomKeys(w http.ResponseWriter, r *http.Request) {
	version, room, session, err := roomKeysTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	counts, err := a.Keys.DeleteBackupKeys(r.Context(), requesterFrom(r.Context()).UserID, version, room, session)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, counts)
}
