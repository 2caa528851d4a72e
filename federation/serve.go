package federation

import (
	"github.com/go-chi/chi/v5"
)

// ServeDeps are the domain services behind the read endpoints other
// servers call: the room graph, queries, the room directory, devices and
// keys, and media. A nil field leaves its endpoints unmounted (404
// M_UNRECOGNIZED).
type ServeDeps struct {
	Graph     RoomGraph
	Directory DirectoryReader
	Profiles  ProfileReader
	Devices   DeviceKeys
	Media     MediaReader
}

// serveRoutes mounts the read endpoints (server-server API: "Backfilling
// and retrieving missing events", "Retrieving events", "Retrieving event
// authorisation information", "Querying for information", "Published Room
// Directory", "Device Management", "End-to-End Encryption", "Content
// Repository"). All of them are behind X-Matrix authentication.
func (a *API) serveRoutes(r chi.Router) {
	const v1 = "/_matrix/federation/v1"
	d := a.d.Serve
	if d.Graph != nil {
		r.Get(v1+"/event/{eventId}", a.getEvent)
		r.Get(v1+"/event_auth/{roomId}/{eventId}", a.getEventAuth)
		r.Get(v1+"/timestamp_to_event/{roomId}", a.timestampToEvent)
		r.Get(v1+"/state/{roomId}", a.getState)
		r.Get(v1+"/state_ids/{roomId}", a.getStateIDs)
		r.Get(v1+"/backfill/{roomId}", a.backfill)
		r.Post(v1+"/get_missing_events/{roomId}", a.getMissingEvents)
	}
	if d.Directory != nil {
		r.Get(v1+"/query/directory", a.queryDirectory)
		r.Get(v1+"/publicRooms", a.getPublicRooms)
		r.Post(v1+"/publicRooms", a.postPublicRooms)
	}
	if d.Profiles != nil {
		r.Get(v1+"/query/profile", a.queryProfile)
	}
	if d.Devices != nil {
		r.Get(v1+"/user/devices/{userId}", a.userDevices)
		r.Post(v1+"/user/keys/query", a.queryUserKeys)
		r.Post(v1+"/user/keys/claim", a.claimUserKeys)
	}
	if d.Media != nil {
		r.Get(v1+"/media/download/{mediaId}", a.mediaDownload)
		r.Get(v1+"/media/thumbnail/{mediaId}", a.mediaThumbnail)
	}
}
