// Package syncer is the sync engine of the Client-Server API (spec
// client-server-api "Syncing", "Filtering", "Lazy-loading room members"):
// filters and their matcher, the sync token (one position per stream), the
// in-process notifier that wakes waiting long-polls, and the service that
// builds a /sync response from the room store.
//
// It is a domain package: it imports no edge (clientapi, federation), no
// storage and no driver. The stores it reads (filters, timelines,
// memberships, state) and the cluster bus are interfaces declared here and
// implemented by storage (and later by the NATS bus).
package syncer
