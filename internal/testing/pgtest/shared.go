package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// StrictEnv names the environment variable that, set to 1, turns a missing
// PostgreSQL into a test failure instead of a skip (CI sets it).
const StrictEnv = "TRELLIS_TEST_STRICT"

// dirPattern names the folders of shared servers, for sweeping up the
// folders of test binaries that exited without stopping theirs.
const dirPattern = "trellis-pgtest-*"

var shared struct {
	once sync.Once
	srv  *Server
	err  error
	mu   sync.Mutex // guards stopping srv
	n    atomic.Int64
}

// Start returns the URL of a fresh, empty database on the test binary's
// shared server, starting that server on first use; the database is dropped
// when the test ends. Without PostgreSQL the test is skipped, loudly, or
// fails when TRELLIS_TEST_STRICT=1.
func Start(t testing.TB) string {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(StrictEnv) == "1" {
			t.Fatalf("pgtest: %v (%s=1, so this fails instead of skipping)", err, StrictEnv)
		}
		t.Skipf("!!! SKIPPING: %v; install PostgreSQL (Debian: apt-get install postgresql) to run this test", err)
	}
	srv, err := sharedServer()
	if err != nil {
		t.Fatalf("pgtest: starting the shared PostgreSQL server: %v", err)
	}
	name := "test_" + strconv.FormatInt(shared.n.Add(1), 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, err := srv.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return url
}

func sharedServer() (*Server, error) {
	shared.once.Do(func() {
		sweep()
		dir, err := os.MkdirTemp("", dirPattern)
		if err != nil {
			shared.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		owner := []byte(strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(filepath.Join(dir, "owner.pid"), owner, 0o644); err != nil {
			shared.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		srv, err := StartServer(dir)
		if err != nil {
			os.RemoveAll(dir)
			shared.err = err
			return
		}
		srv.removeDir = true
		shared.srv = srv
	})
	return shared.srv, shared.err
}

// StopShared stops the shared server, if one was started, and removes its
// folder. Main calls it after the tests.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return nil
	}
	err := shared.srv.Stop()
	shared.srv = nil
	return err
}

// Main runs the tests, stops the shared server and exits; call it from
// TestMain in every package that uses Start.
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// sweep removes the folders of shared servers whose test binary has exited
// (their postgres got SIGINT then, but nobody removed the folder).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}
