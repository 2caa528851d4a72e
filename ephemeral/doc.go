// Package ephemeral owns the room data that is not part of the room graph:
// typing notifications (in memory, spec client-server-api "Typing
// Notifications") and receipts with read markers ("Receipts", "Read and
// unread markers"). It tells the sync engine's notifier about every change
// and serves the sync engine the m.typing / m.receipt streams.
//
// It is a domain package: no edge, no storage, no driver. Its stores are
// interfaces declared here and implemented by storage.
package ephemeral
