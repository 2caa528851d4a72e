package main

import (
	"fmt"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// runKeys administers the server's signing keys: `parley keys list` and
// `parley keys rotate` (retire the current key into old_verify_keys and
// generate a new one; the server uses it from its next start).
func runKeys(cfg *config.Config, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "list":
		current, old, err := app.SigningKeyIDs(cfg.DataDir)
		if err != nil {
			return err
		}
		fmt.Printf("%s\tcurrent\n", current)
		for _, k := range old {
			fmt.Printf("%s\texpired %s\n", k.KeyID, time.UnixMilli(k.ExpiredTS).UTC().Format(time.RFC3339))
		}
		return nil
	case len(args) == 1 && args[0] == "rotate":
		oldID, newID, err := app.RotateSigningKey(cfg.DataDir, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("retired %s, new key %s; a running server switches to it within 10 seconds\n", oldID, newID)
		return nil
	default:
		return usagef("usage: parley keys list|rotate")
	}
}
