package pgcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ownerPIDFile records, in the data directory, the pid of the process that
// started the server. With it a second process (an admin command beside
// `parley serve`) tells a server in use from one whose owner died.
const ownerPIDFile = "parley.owner"

func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerPIDFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// ownedElsewhere returns the pid and port of a server of dir that a live
// process still owns: the postmaster is alive, and its parent is the
// process recorded as owner. 0 when there is none. A postmaster whose owner
// died has been re-parented (to init or a subreaper) and does not count.
func ownedElsewhere(dir string) (pid, port int) {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, 0
	}
	pid = parsePID(data)
	if pid <= 0 || !servesDir(pid, dir) {
		return 0, 0
	}
	// postmaster.pid: pid, data directory, start time, port, …
	lines := strings.Split(string(data), "\n")
	if len(lines) < 4 {
		return 0, 0
	}
	port, err = strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil || port <= 0 {
		return 0, 0
	}
	ownerData, err := os.ReadFile(filepath.Join(dir, ownerPIDFile))
	if err != nil {
		return 0, 0
	}
	owner := parsePID(ownerData)
	if owner <= 0 || parentPID(pid) != owner || !processAlive(owner) {
		return 0, 0
	}
	return pid, port
}

// parentPID reads the parent of pid from /proc, 0 when unknown.
func parentPID(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid …"; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}
