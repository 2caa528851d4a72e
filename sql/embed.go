// Package sql embeds Parley's numbered schema migrations (NNNN_name.sql),
// applied in order by storage.Migrate. A migration, once released, is never
// edited: a change is a new file with the next number.
package sql

import "embed"

// Migrations holds every *.sql file of this directory.
//
//go:embed *.sql
var Migrations embed.FS
