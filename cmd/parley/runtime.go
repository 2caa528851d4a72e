package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"syscall"

	"github.com/parleyhq/parley/config"
)

// tuneRuntime applies the process-wide settings of a serving Parley: the
// soft memory limit (runtime.memory_limit_mb, unless GOMEMLIMIT is set),
// and a look at the open file limit, which bounds the sync connections
// the server can hold (one descriptor each). Go raises the soft
// RLIMIT_NOFILE to the hard limit at start-up (since Go 1.19); a hard
// limit only the operator can raise, so it is logged, with a warning when
// it is low.
func tuneRuntime(cfg config.Runtime, logger *slog.Logger) {
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		logger.Info("memory limit from GOMEMLIMIT", "limit_bytes", debug.SetMemoryLimit(-1))
	case cfg.MemoryLimitMB > 0:
		debug.SetMemoryLimit(cfg.MemoryLimitMB << 20)
		logger.Info("memory limit", "limit_mb", cfg.MemoryLimitMB)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("open file limit unknown", "error", err)
		return
	}
	if lim.Cur < lim.Max {
		// Not raised by the runtime (another platform): raise it here.
		raised := lim
		raised.Cur = raised.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	if lim.Cur < 16384 {
		logger.Warn("low open file limit: each sync connection takes one; raise the hard limit (ulimit -Hn, LimitNOFILE=)",
			"soft", lim.Cur, "hard", lim.Max)
		return
	}
	logger.Info("open file limit", "soft", lim.Cur, "hard", lim.Max)
}
