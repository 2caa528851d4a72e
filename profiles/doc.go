// Package profiles is the profile domain: a user's display name, avatar and
// the custom profile fields of client-server API v1.16+ ("Profiles"), their
// key grammar and size limits, the propagation of a changed display name or
// avatar to the user's membership events, and the user directory search
// ("User directory").
//
// It declares the stores and the room-side hook it needs (store.go) and
// never imports an edge (clientapi, federation), storage or a database
// driver; package storage implements the stores and app wires them in.
package profiles
