// Package interop runs real Matrix clients against real Parley servers
// (issue #8, "Real clients in the test suite"): the published matrix-js-sdk
// with its Rust crypto (@matrix-org/matrix-sdk-crypto-wasm), driven by the
// Node scripts beside this file, talks plain HTTP to the client API of two
// Parleys that federate over real TLS. Each scenario of scenarios.mjs runs
// in a Node process of its own, three at a time; a scenario that fails — a
// message not seen, an event the client cannot decrypt — fails its subtest.
//
// The test needs Node.js (20 or later) and npm on PATH, and the npm registry
// the first time (npm ci installs tests/interop/node_modules, kept between
// runs; a fresh clone installs again from npm's cache). Without them it
// fails, saying so: it never skips.
package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	// minNodeMajor is the oldest Node.js the pinned matrix-js-sdk supports
	// (its package.json "engines").
	minNodeMajor = 20
	// scenarioTimeout bounds one scenario's process; its own waits fail
	// sooner (PARLEY_INTEROP_TIMEOUT_MS, 60 s each) with what they waited for.
	scenarioTimeout = 3 * time.Minute
	installTimeout  = 5 * time.Minute
	// stampFile, inside node_modules, records which package-lock.json and
	// Node.js the modules were installed for.
	stampFile = ".parley-install-stamp"
)

// TestClients runs every scenario of scenarios.mjs against two federated
// Parleys: the local scenarios use hs1, the federated ones hs1 and hs2.
func TestClients(t *testing.T) {
	node := requireNode(t)
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	installModules(t, dir, node)
	names := listScenarios(t, dir, node)
	if len(names) < 8 {
		t.Fatalf("run.mjs lists %d scenarios (%v), want at least the 8 of issue #8", len(names), names)
	}

	servers := apptest.StartFederation(t, 2)
	env := append(os.Environ(),
		"PARLEY_HS1_URL="+servers[0].URL,
		"PARLEY_HS2_URL="+servers[1].URL,
	)
	// The scenarios mostly wait on the servers and on each other's
	// clients: run them side by side, more of them than go test -parallel
	// (the cores) would allow, then report each as a subtest.
	results := make([]scenarioResult, len(names))
	sem := make(chan struct{}, scenarioParallelism())
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = runScenario(dir, node, env, name)
		}()
	}
	wg.Wait()
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			r := results[i]
			if r.failure != "" {
				t.Fatalf("%s\n%s", r.failure, r.output)
			}
			t.Logf("%s passed in %s", name, r.elapsed)
			if testing.Verbose() {
				t.Log(r.output)
			}
		})
	}
}

// scenarioParallelism is how many scenario processes run at once:
// PARLEY_INTEROP_PARALLEL, else 3.
func scenarioParallelism() int {
	if n, err := strconv.Atoi(os.Getenv("PARLEY_INTEROP_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 3
}

// requireNode finds node and npm on PATH and checks node's version.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the interop test needs Node.js %d or later on PATH (and npm): %v", minNodeMajor, err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("the interop test needs npm on PATH to install matrix-js-sdk: %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	version := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`^v(\d+)\.`).FindStringSubmatch(version)
	if m == nil {
		t.Fatalf("node --version printed %q", version)
	}
	if major, _ := strconv.Atoi(m[1]); major < minNodeMajor {
		t.Fatalf("the interop test needs Node.js %d or later; %s is %s", minNodeMajor, node, version)
	}
	return node
}

// installModules runs npm ci when node_modules is missing or was installed
// for another package-lock.json or Node.js. A failure — typically no
// network to the npm registry — fails the test with npm's output.
func installModules(t *testing.T, dir, node string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	version, _ := exec.Command(node, "--version").Output()
	sum := sha256.Sum256(append(lock, version...))
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampFile)
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return
	}
	// Two go test runs in one checkout must not run npm ci at once.
	lockFile, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lockFile.Close()
	if err := syscall.Flock(int(lockFile.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lockFile.Name(), err)
	}
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return // the other run installed them
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	// --prefer-offline: a package already in npm's cache is not asked for
	// again, so a fresh clone on a machine that ran the test before
	// installs without the network.
	cmd := exec.CommandContext(ctx, "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s failed after %s (the interop test installs matrix-js-sdk from the npm registry; is it reachable?): %v\n%s",
			dir, time.Since(start).Round(time.Second), err, out)
	}
	t.Logf("npm ci: %s", time.Since(start).Round(time.Second))
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}

func listScenarios(t *testing.T, dir, node string) []string {
	t.Helper()
	cmd := exec.Command(node, "run.mjs", "--list")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node run.mjs --list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

type scenarioResult struct {
	output  string
	elapsed time.Duration
	failure string // "" when the scenario passed
}

// runScenario runs one scenario in a Node process; it fails when the
// process exits non-zero, outlives scenarioTimeout or does not report PASS.
func runScenario(dir, node string, env []string, name string) scenarioResult {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs", name)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := scenarioResult{elapsed: time.Since(start).Round(time.Millisecond)}
	r.output = out.String()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.failure = fmt.Sprintf("scenario %s did not finish within %s", name, scenarioTimeout)
	case errors.As(err, &exit):
		r.failure = fmt.Sprintf("scenario %s failed (exit %d after %s)", name, exit.ExitCode(), r.elapsed)
	case err != nil:
		r.failure = fmt.Sprintf("scenario %s: %v", name, err)
	case !strings.Contains(r.output, fmt.Sprintf("PASS %s ", name)):
		r.failure = fmt.Sprintf("scenario %s exited 0 without reporting PASS", name)
	}
	return r
}
