package users

import "testing"

func TestNextStageAllowed(t *testing.T) {
	flows := []Flow{{Stages: []string{"a", "b"}}, {Stages: []string{"c"}}}
	tests := []struct {
		name      string
		completed []string
		stage     string
		want      bool
	}{
		{"first stage of a flow", nil, "a", true},
		{"first stage of another flow", nil, "c", true},
		{"second stage before the first", nil, "b", false},
		{"second stage after the first", []string{"a"}, "b", true},
		{"stage of no flow", nil, "z", false},
		{"stage after a finished flow", []string{"c"}, "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextStageAllowed(flows, tt.completed, tt.stage); got != tt.want {
				t.Fatalf("nextStageAllowed(%v, %q) = %v, want %v", tt.completed, tt.stage, got, tt.want)
			}
		})
	}
}

func TestSharedSecretMAC(t *testing.T) {
	// Computed independently: printf 'abc\0alice\0pw\0notadmin' | openssl dgst -sha1 -hmac secret
	tests := []struct {
		name  string
		admin bool
	}{{"notadmin", false}, {"admin", true}}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac := SharedSecretMAC("secret", "abc", "alice", "pw", tt.admin, "")
			if !tt.admin && mac != "42e32623fe124933c326f9d2d67ff7c617915a10" {
				t.Fatalf("mac = %q, want the openssl-computed vector", mac)
			}
			if len(mac) != 40 {
				t.Fatalf("mac %q is not 40 hex digits", mac)
			}
			if seen[mac] {
				t.Fatal("admin flag does not change the MAC")
			}
			seen[mac] = true
		})
	}
}
