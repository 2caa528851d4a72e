package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverUser is the account initdb and postgres run as when Parley runs as
// root: both refuse to run as root, and Debian's package creates this user.
const serverUser = "postgres"

// owner is the account the server processes run as. Zero value: the current
// user (Parley is not root).
type owner struct {
	cred *syscall.Credential
}

// currentOwner returns the postgres account when running as root, else the
// current user.
func currentOwner() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{}, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return owner{}, fmt.Errorf("running as root, PostgreSQL must run as the %q system user, which does not exist (Debian's postgresql package creates it): %w", serverUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return owner{}, fmt.Errorf("user %s uid %q: %w", serverUser, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return owner{}, fmt.Errorf("user %s gid %q: %w", serverUser, u.Gid, err)
	}
	return owner{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false, Groups: []uint32{}}}, nil
}

// chown gives path to the server account (no-op when not root).
func (o owner) chown(path string) error {
	if o.cred == nil {
		return nil
	}
	return os.Chown(path, int(o.cred.Uid), int(o.cred.Gid))
}

// command builds a command that runs as the server account, with PG*
// variables removed from the environment so that nothing inherited (PGDATA,
// PGPORT, …) overrides what the cluster is told explicitly.
func (o owner) command(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	env := []string{"LC_ALL=C"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	return cmd
}

// clearStalePostmaster makes the directory startable after the previous
// owner died without stopping its server (kill -9 of Parley or of a test
// binary). postmaster.pid may name:
//   - a postmaster still serving this directory (its owner died but it did
//     not): it is asked to shut down fast and awaited;
//   - a dead process, or an unrelated one that reused the pid (common after a
//     container restart, where postgres itself would refuse to start): the
//     file is removed.
func clearStalePostmaster(dir string, timeout time.Duration) error {
	pidFile := filepath.Join(dir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pidFile, err)
	}
	pid := parsePID(data)
	if pid <= 0 {
		return removeIfPresent(pidFile)
	}
	if !servesDir(pid, dir) {
		return removeIfPresent(pidFile)
	}
	// SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop leftover postmaster %d of %s: %w", pid, dir, err)
	}
	deadline := time.Now().Add(timeout)
	for servesDir(pid, dir) {
		if time.Now().After(deadline) {
			return fmt.Errorf("leftover postmaster %d of %s did not stop within %s", pid, dir, timeout)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	return removeIfPresent(pidFile)
}

// servesDir reports whether process pid is alive and is a server whose
// working directory is dir (postgres changes into its data directory).
func servesDir(pid int, dir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	if cwd != want {
		return false
	}
	// A zombie or exiting process still has /proc entries; check its state.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// checkReachable reports the first parent of dir that the server account
// cannot search, so that a root-run Parley with a 0700 data_dir gets an
// error naming the directory instead of initdb's "permission denied".
func (o owner) checkReachable(dir string) error {
	if o.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		searchable := perm&0o001 != 0 ||
			(ok && st.Uid == o.cred.Uid && perm&0o100 != 0) ||
			(ok && st.Gid == o.cred.Gid && perm&0o010 != 0)
		if !searchable {
			return fmt.Errorf("the %s user cannot reach %s: %s is mode %04o; allow it to pass (chmod o+x %s) or choose another directory",
				serverUser, dir, p, perm, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// postmasterPID reads the pid in dir's postmaster.pid, 0 when none.
func postmasterPID(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	return parsePID(data)
}

// parsePID reads the first line of a pid file, 0 when it is not a pid.
func parsePID(data []byte) int {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
