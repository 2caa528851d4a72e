package pgcluster

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// newDir returns a cluster directory (not yet created) that the postgres
// user can reach, removed when the test ends.
func newDir(t *testing.T) string {
	t.Helper()
	tmp, err := TempDir("pgcluster-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	return filepath.Join(tmp, "data")
}

// start initialises and starts a cluster, stopped when the test ends.
func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	ctx := context.Background()
	c, err := Ensure(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestFindBinaries(t *testing.T) {
	t.Run("finds an installation", func(t *testing.T) {
		b, err := FindBinaries(0)
		if err != nil {
			t.Fatal(err)
		}
		if b.Major < 15 {
			t.Errorf("major version %d, want >= 15", b.Major)
		}
		if filepath.Base(b.Initdb) != "initdb" || filepath.Base(b.Postgres) != "postgres" {
			t.Errorf("binaries %+v", b)
		}
	})
	t.Run("missing version names the package", func(t *testing.T) {
		_, err := FindBinaries(99)
		if !errors.Is(err, ErrNoBinaries) {
			t.Fatalf("err = %v, want ErrNoBinaries", err)
		}
		if !strings.Contains(err.Error(), "postgresql-99") {
			t.Errorf("error %q does not name the package postgresql-99", err)
		}
	})
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		throwaway bool
		want      map[string]string
	}{
		{"throwaway trades durability", true, map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "listen_addresses": "127.0.0.1"}},
		{"managed keeps durable defaults", false, map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "listen_addresses": "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := start(t, Options{Dir: newDir(t), Throwaway: tc.throwaway})
			if c.Port() == 0 {
				t.Fatal("no port after Start")
			}
			for name, want := range tc.want {
				if got := query(t, c.URL(), "SHOW "+name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := query(t, c.URL(), "SHOW server_encoding"); got != "UTF8" {
				t.Errorf("server_encoding = %q", got)
			}
		})
	}
}

func TestRestartKeepsDataAndPort(t *testing.T) {
	ctx := context.Background()
	dir := newDir(t)
	c := start(t, Options{Dir: dir, Throwaway: true})
	if err := c.EnsureDatabase(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DatabaseURL("keep"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	port := c.Port()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}

	c2 := start(t, Options{Dir: dir, Throwaway: true})
	if c2.Port() != port {
		t.Errorf("port after restart %d, want the remembered %d", c2.Port(), port)
	}
	if got := query(t, c2.DatabaseURL("keep"), "SELECT v FROM kept"); got != "hello" {
		t.Errorf("kept row = %q", got)
	}
}

func TestStalePostmaster(t *testing.T) {
	ctx := context.Background()
	t.Run("pid file of an unrelated live process", func(t *testing.T) {
		dir := newDir(t)
		c := start(t, Options{Dir: dir, Throwaway: true})
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		// Our own pid: alive, but not a postmaster of dir (a reused pid).
		stale := strconv.Itoa(os.Getpid()) + "\n" + dir + "\n"
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("Start with a stale postmaster.pid: %v", err)
		}
		if got := query(t, c.URL(), "SELECT 'up'"); got != "up" {
			t.Errorf("query = %q", got)
		}
	})
	t.Run("server left behind by a dead owner", func(t *testing.T) {
		dir := newDir(t)
		abandoned := start(t, Options{Dir: dir, Throwaway: true})
		// Record a dead owner, as after a kill -9 of the owner whose server
		// outlived it (TestKill9 does it for real, where the server goes
		// down on its own): a second owner stops it and starts its own.
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerPIDFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		c := start(t, Options{Dir: dir, Throwaway: true})
		select {
		case <-abandoned.exited:
		case <-time.After(10 * time.Second):
			t.Fatal("the leftover server was not stopped")
		}
		if got := query(t, c.URL(), "SELECT 'up'"); got != "up" {
			t.Errorf("query = %q", got)
		}
	})
}

func TestInitRefusesForeignDirectory(t *testing.T) {
	dir := newDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Init(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Init of a non-empty non-cluster directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PG_VERSION written into a foreign directory: %v", err)
	}
}

func TestConfiguredPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := New(Options{Dir: newDir(t), Port: port, Throwaway: true, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	err = c.Start(ctx)
	if err == nil {
		c.Stop(ctx)
		t.Fatal("Start on a busy configured port succeeded")
	}
	if !errors.Is(err, errPortTaken) {
		t.Errorf("err = %v, want errPortTaken", err)
	}
}

func TestSecondProcessAttaches(t *testing.T) {
	ctx := context.Background()
	dir := newDir(t)
	owner := start(t, Options{Dir: dir, Throwaway: true})
	// Another Cluster on the same directory while the owner (this process)
	// lives: an admin command beside `parley serve`.
	guest, err := New(Options{Dir: dir, Throwaway: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Start(ctx); err != nil {
		t.Fatalf("Start beside a live owner: %v", err)
	}
	if guest.Port() != owner.Port() {
		t.Errorf("guest port %d, owner port %d", guest.Port(), owner.Port())
	}
	if got := query(t, guest.URL(), "SELECT 'up'"); got != "up" {
		t.Errorf("query through the guest = %q", got)
	}
	if err := guest.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-owner.exited:
		t.Fatal("the guest's Stop stopped the owner's server")
	default:
	}
	if got := query(t, owner.URL(), "SELECT 'still up'"); got != "still up" {
		t.Errorf("owner's server after the guest's Stop = %q", got)
	}
}
