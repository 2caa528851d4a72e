package config

import (
	"strings"
	"testing"
)

func TestRuntimeMemoryLimitValidation(t *testing.T) {
	for _, tc := range []struct {
		mb      int64
		problem string
	}{
		{0, ""},
		{1024, ""},
		{64, ""},
		{-1, "runtime.memory_limit_mb: must not be negative"},
		{10, "runtime.memory_limit_mb: at least 64"},
	} {
		cfg := Defaults()
		cfg.Runtime.MemoryLimitMB = tc.mb
		err := cfg.Validate()
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("memory_limit_mb %d: %v", tc.mb, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("memory_limit_mb %d: got %v, want a problem %q", tc.mb, err, tc.problem)
		}
	}
}

func TestRuntimeMemoryLimitFromEnv(t *testing.T) {
	cfg, err := Load("", false, []string{"PARLEY_RUNTIME_MEMORY_LIMIT_MB=512"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.MemoryLimitMB != 512 {
		t.Errorf("memory_limit_mb = %d, want 512", cfg.Runtime.MemoryLimitMB)
	}
}
