package main

import "testing"

// serve's own flags: a wrong one or a stray argument is a usage error
// (exit code 2), refused before anything starts.
func TestServeFlags(t *testing.T) {
	t.Setenv("PARLEY_SERVER_NAME", "flags.test")
	for _, args := range [][]string{
		{"serve", "-no-such-flag"},
		{"serve", "-cpuprofile"},
		{"serve", "-trace"},
		{"serve", "extra"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("parley %q: exit code %d, want 2", args, code)
		}
	}
}
