// Package users is the accounts domain: accounts and their passwords,
// devices, access / refresh / login tokens, registration tokens,
// shared-secret registration, user-interactive authentication (one mechanism
// for every operation that needs it) and the rate limiter used in front of
// login and registration.
//
// It declares the stores it needs (store.go) and never imports an edge
// (clientapi, federation), storage or a database driver; package storage
// implements the stores and cmd/parley wires them in.
package users
