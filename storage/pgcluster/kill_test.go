package pgcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownerEnv makes this test binary play a Parley process that owns a
// cluster: it starts the cluster in the named directory, reports, and
// waits to be killed.
const ownerEnv = "PGCLUSTER_TEST_OWNER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(ownerEnv); dir != "" {
		c, err := Ensure(context.Background(), Options{Dir: dir, Throwaway: true})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", c.Port())
		select {}
	}
	os.Exit(m.Run())
}

// restartWorks starts a new owner on dir and checks the data survived.
func restartWorks(t *testing.T, dir string) {
	t.Helper()
	c := start(t, Options{Dir: dir, Throwaway: true})
	if got := query(t, c.URL(), "SELECT count(*)::text FROM pg_database WHERE datname = 'survivor'"); got != "1" {
		t.Errorf("database created before the kill: count %s", got)
	}
}

func TestKill9(t *testing.T) {
	ctx := context.Background()
	t.Run("of the owning process", func(t *testing.T) {
		dir := newDir(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), ownerEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if !strings.HasPrefix(line, "ready ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("owner said %q", line)
		}
		port := strings.TrimSpace(strings.TrimPrefix(line, "ready "))
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port)
		query(t, url, "SELECT 'x' FROM (SELECT 1) s") // the owner's server answers
		if err := CreateDatabase(ctx, url, "survivor", ""); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		restartWorks(t, dir)
	})
	t.Run("of the postmaster", func(t *testing.T) {
		dir := newDir(t)
		c := start(t, Options{Dir: dir, Throwaway: true})
		if err := c.EnsureDatabase(ctx, "survivor"); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		proc, exited := c.cmd.Process, c.exited
		c.mu.Unlock()
		if err := proc.Kill(); err != nil {
			t.Fatal(err)
		}
		<-exited
		if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
			t.Fatalf("expected a stale postmaster.pid after kill -9: %v", err)
		}
		restartWorks(t, dir)
	})
}

func TestUnreachableDirectoryIsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	tmp := newDir(t) // …/data inside a searchable temporary directory
	private := filepath.Join(filepath.Dir(tmp), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Dir: filepath.Join(private, "pg"), Throwaway: true, StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Init(context.Background())
	if err == nil || !strings.Contains(err.Error(), private+" is mode 0700") {
		t.Fatalf("Init under a 0700 directory: %v", err)
	}
}
