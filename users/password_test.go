package users

import (
	"strings"
	"testing"
)

var cheap = PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with the given parameters", h)
	}
	h2, _ := HashPassword("correct horse", cheap)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		name     string
		hash     string
		password string
		ok       bool
		wantErr  bool
	}{
		{"right password verifies", h, "correct horse", true, false},
		{"wrong password fails", h, "correct horse!", false, false},
		{"empty password fails", h, "", false, false},
		{"bcrypt-looking hash is refused", "$2b$10$abc", "x", false, true},
		{"truncated hash is refused", h[:len(h)-50], "correct horse", false, true},
		{"zero parameters are refused", "$argon2id$v=19$m=0,t=0,p=0$AAAA$AAAA", "x", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.hash, tt.password)
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("VerifyPassword = %v, %v; want %v, error %v", ok, err, tt.ok, tt.wantErr)
			}
		})
	}
}
