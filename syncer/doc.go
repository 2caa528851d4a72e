// Package syncer is the sync engine of the Client-Server API (spec
// client-server-api "Syncing", "Filtering", "Lazy-loading room members"):
// filters and their matcher, the sync token (one position per stream), the
// in-process notifier that wakes waiting long-polls, and the service that
// builds a /sync response from the room store.
//
// It is a domain package: it imports no edge (clientapi, federation), no
// storage and no driver. It reads the rooms domain's types (stored events,
// state, the client event format) and implements its Notifier seam. The
// stores it reads (Store, FilterStore) and the cluster bus (Bus) are
// interfaces declared here, implemented by storage (and later by the NATS
// bus).
//
// The timeline is the engine's own stream; every other one (typing,
// receipts, account data, presence) plugs in as a StreamSource
// (streams.go): its current position and its part of a response for a
// range of positions. The long-poll waits on and next_batch carries every
// stream's position.
//
// Token format: "p1_" then one decimal position per stream, in Stream
// order (timeline = the global event stream position, then typing,
// receipts, to-device, account data, presence, device lists); streams are
// only ever appended, and a shorter token reads the missing ones as 0.
package syncer
