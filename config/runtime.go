package config

// Runtime tunes the server process itself.
type Runtime struct {
	// MemoryLimitMB is the Go runtime's soft memory limit in MiB
	// (runtime/debug.SetMemoryLimit): as the process nears it, the garbage
	// collector runs more often instead of letting the heap grow to twice
	// what is live, so tens of thousands of idle sync connections fit in
	// a fixed amount of memory (issue #9). It is soft: a live heap larger
	// than the limit is still served, at the cost of more collection CPU.
	// 0 sets no limit. The GOMEMLIMIT environment variable, when set, wins.
	MemoryLimitMB int64 `yaml:"memory_limit_mb"`
}

// DefaultRuntime is a 1 GiB soft memory limit.
func DefaultRuntime() Runtime {
	return Runtime{MemoryLimitMB: 1024}
}

// validate adds the runtime section's problems.
func (r *Runtime) validate(add func(format string, args ...any)) {
	if r.MemoryLimitMB < 0 {
		add("runtime.memory_limit_mb: must not be negative, got %d", r.MemoryLimitMB)
	}
	if r.MemoryLimitMB > 0 && r.MemoryLimitMB < 64 {
		add("runtime.memory_limit_mb: at least 64 (or 0 for no limit), got %d", r.MemoryLimitMB)
	}
}
