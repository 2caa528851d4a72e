// Package keys is the server side of end-to-end encryption (spec
// client-server-api "End-to-end encryption", "Send-to-Device messaging",
// "Server-side key backups"): the directory of devices' identity keys,
// one-time and fallback keys, cross-signing keys and their signatures, the
// to-device mailbox with its sync stream, the device lists stream that
// tells clients whose devices to re-query, and key backups. The server only
// ever sees public keys, signatures and ciphertext.
//
// Federation is reached through interfaces this package declares
// (EDUSender, RemoteKeys); the federation edge implements them and calls
// the Handle* and Federation* methods for what remote servers send.
//
// It is a domain package: no edge, no storage, no driver.
package keys
