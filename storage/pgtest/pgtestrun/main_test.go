package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/storage/miniotest"
	"github.com/parleyhq/parley/storage/pgtest"
)

// childEnv makes this test binary act as the command pgtestrun runs: it
// prints the URL it got and whether the database answered, then exits 3.
const childEnv = "PGTESTRUN_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		url := os.Getenv(pgtest.EnvDatabaseURL)
		// Generous: under the whole suite's load a connection to the new
		// cluster has taken over 10 s.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		state := "up"
		var one int
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT 1`).Scan(&one)
			conn.Close(ctx)
		}
		if err != nil || one != 1 {
			state = strings.ReplaceAll(fmt.Sprintf("down (%v)", err), "\n", " ")
		}
		os.Stdout.WriteString(url + "\n" + state + "\n" + os.Getenv(miniotest.EnvEndpoint) + "\n")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// runChild runs pgtestrun with this binary as the command; s3 is the MinIO
// endpoint the command saw.
func runChild(t *testing.T, env map[string]string) (code int, url, state, s3 string) {
	t.Helper()
	t.Setenv(childEnv, "1")
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run([]string{"--", os.Args[0], "-test.run=^$"}, getenv, &out, &errOut)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("child output %q, stderr %q", out.String(), errOut.String())
	}
	return code, lines[0], lines[1], lines[2]
}

// s3Live reports whether a MinIO answers at endpoint.
func s3Live(endpoint string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + endpoint + "/minio/health/live")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func TestRun(t *testing.T) {
	t.Run("starts a cluster, exports its URL, propagates the exit code, removes the cluster", func(t *testing.T) {
		t.Setenv(pgtest.EnvDatabaseURL, "") // what the child inherits besides the export
		t.Setenv(miniotest.EnvEndpoint, "")
		code, url, state, s3 := runChild(t, map[string]string{})
		if code != 3 {
			t.Errorf("exit code %d, want the command's 3", code)
		}
		if !strings.HasPrefix(url, "postgres://") || state != "up" {
			t.Fatalf("command saw URL %q, database %s", url, state)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			conn.Close(ctx)
			t.Error("the cluster still answers after pgtestrun returned")
		}
		if s3 == "" {
			t.Fatal("the command got no MinIO endpoint")
		}
		if s3Live(s3) {
			t.Error("MinIO still answers after pgtestrun returned")
		}
	})
	t.Run("an existing URL is passed through without a cluster", func(t *testing.T) {
		const given = "postgres://postgres@127.0.0.1:1/given?sslmode=disable"
		const givenS3 = "127.0.0.1:1"
		t.Setenv(pgtest.EnvDatabaseURL, given)
		t.Setenv(miniotest.EnvEndpoint, givenS3)
		code, url, state, s3 := runChild(t, map[string]string{pgtest.EnvDatabaseURL: given, miniotest.EnvEndpoint: givenS3})
		if code != 3 || url != given || !strings.HasPrefix(state, "down") || s3 != givenS3 {
			t.Errorf("code %d url %q state %s s3 %q; want 3, %q, down (nothing listens there), %q", code, url, state, s3, given, givenS3)
		}
	})
	t.Run("no command is a usage error", func(t *testing.T) {
		var errOut bytes.Buffer
		if code := run([]string{"--"}, func(string) string { return "" }, &bytes.Buffer{}, &errOut); code != 2 {
			t.Errorf("exit code %d, want 2", code)
		}
		if !strings.Contains(errOut.String(), "usage") {
			t.Errorf("stderr %q", errOut.String())
		}
	})
	t.Run("a command killed by a signal exits 128+n", func(t *testing.T) {
		getenv := func(string) string { return "postgres://unused" }
		code := run([]string{"sh", "-c", "kill -TERM $$"}, getenv, &bytes.Buffer{}, &bytes.Buffer{})
		if want := 128 + int(syscall.SIGTERM); code != want {
			t.Errorf("exit code %d, want %d", code, want)
		}
	})
}
