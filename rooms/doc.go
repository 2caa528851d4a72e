// Package rooms is the room domain on one server: creating rooms, sending
// messages and state, membership, reading events, state and history under
// the history visibility rules, aliases and the room directory. It builds
// events with rooms/event, checks them with rooms/auth and persists them
// through one path (Service.persist → Store.Append) that local clients and,
// later, federation share.
//
// Events from other servers take their own path: Inbound (inbound*.go)
// runs the server-server API's checks on receipt of a PDU, fetches what it
// lacks through the RemoteFetcher seam, resolves forks of the room graph
// with rooms/stateres and persists through RemoteStore (outliers,
// soft-failed and rejected events are stored but never shown); it also
// imports rooms joined over federation and keeps invites to rooms this
// server is not in.
//
// It declares the stores it needs (store.go) and the Notifier and
// OutboundSender seams; package storage implements the stores, the sync
// engine the Notifier and federation the OutboundSender. It imports no
// edge (clientapi, federation), no storage and no driver.
package rooms
