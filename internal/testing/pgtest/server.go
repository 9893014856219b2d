// Package pgtest runs throwaway PostgreSQL servers for tests and benchmarks,
// from the initdb and postgres binaries on PATH (or under
// /usr/lib/postgresql/*/bin).
//
// Tests call Start, which hands each test a fresh database on one server
// shared by the whole test binary:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) } // stops the shared server
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.Start(t) // postgres://postgres@127.0.0.1:port/test_N
//		...
//	}
//
// Without pgtest.Main the server still stops when the test binary exits (it
// gets SIGINT when its parent goes), but its temporary folder is left behind
// until a later run sweeps it up. Benchmarks and other programs call
// StartServer and Stop themselves.
//
// initdb and postgres refuse to run as root, and tests often run as root, so
// then they run as Debian's "postgres" user, or "nobody" where it is missing,
// in a folder chowned to that user. The server listens on 127.0.0.1 on a free
// port and on a unix socket in its folder, trusts every local connection, and
// runs with fsync off: it is fast and loses everything on a crash.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres means initdb or postgres could not be found.
var ErrNoPostgres = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin")

// ReadyTimeout bounds how long StartServer waits for the server to accept
// connections.
const ReadyTimeout = 60 * time.Second

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed when the postgres process has exited; waitErr is
	// then its exit status.
	exited  chan struct{}
	waitErr error
	// removeDir: Stop removes dir (it was made by this package).
	removeDir bool
}

// binaries returns the paths of initdb and postgres.
func binaries() (initdb, postgres string, err error) {
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return initdb, postgres, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isFile(i) && isFile(p) {
			return i, p, nil
		}
	}
	return "", "", ErrNoPostgres
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Available reports whether the PostgreSQL binaries can be found.
func Available() error {
	_, _, err := binaries()
	return err
}

// credential returns who the server runs as: nil (the current user) unless
// we are root, then the postgres user, or nobody.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var lastErr error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lastErr = err
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			lastErr = fmt.Errorf("user %s has a non-numeric uid or gid", name)
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and found no unprivileged user (postgres, nobody) to run PostgreSQL as: %w", lastErr)
}

// command prepares a PostgreSQL binary to run in dir as cred.
func command(dir string, cred *syscall.Credential, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	env := []string{"LC_ALL=C", "LANG=C", "HOME=" + dir, "TZ=UTC"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

// StartServer initializes a cluster under dir (which is created if missing
// and chowned to the server's user; its parents must be searchable by that
// user), starts postgres on a free port of 127.0.0.1 and waits until it
// accepts connections. Stop stops it; dir is left to the caller.
func StartServer(dir string) (*Server, error) {
	initdb, postgres, err := binaries()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sock"), 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		for _, p := range []string{dir, filepath.Join(dir, "sock")} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgtest: giving %s to uid %d: %w", p, cred.Uid, err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	out, err := command(dir, cred, initdb, "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgtest: initdb as uid %v: %w\n%s", uidOf(cred), err, out)
	}
	var lastErr error
	for range 3 { // a free port can be taken before postgres binds it
		s, err := start(dir, cred, postgres)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func uidOf(cred *syscall.Credential) any {
	if cred == nil {
		return os.Geteuid()
	}
	return cred.Uid
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres on a free port and waits until it is ready.
func start(dir string, cred *syscall.Credential, postgres string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, port: port, exited: make(chan struct{})}
	s.cmd = command(dir, cred, postgres, "-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+filepath.Join(dir, "sock"),
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "log_min_messages=warning",
	)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// If this process dies, the server gets SIGINT (fast shutdown). The
	// signal is tied to the OS thread that started the child, so that
	// thread stays locked, waiting for the child, until it exits.
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer logFile.Close()
		if err := s.cmd.Start(); err != nil {
			started <- err
			close(s.exited)
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.exited)
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(logPath))
	}
	return s, nil
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(ReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgtest: postgres exited before accepting connections: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %v: %w", ReadyTimeout, err)
		}
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "postgres log:\n" + string(b)
}

// URL is the connection URL of the server's "postgres" database, as the
// superuser "postgres".
func (s *Server) URL() string { return s.DatabaseURL("postgres") }

// DatabaseURL is the connection URL of database name on this server.
func (s *Server) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// Dir is the server's folder: data/, sock/ and postgres.log.
func (s *Server) Dir() string { return s.dir }

// CreateDatabase creates an empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return s.DatabaseURL(name), nil
}

// DropDatabase drops a database, closing any connections to it.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: dropping database %s: %w", name, err)
	}
	return nil
}

func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast shutdown, then immediate, then kill) and
// waits for it to exit. Stopping twice is harmless.
func (s *Server) Stop() error {
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		select {
		case <-s.exited:
			return s.cleanup()
		default:
		}
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
			return s.cleanup()
		case <-time.After(10 * time.Second):
		}
	}
	<-s.exited
	return s.cleanup()
}

func (s *Server) cleanup() error {
	if !s.removeDir {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("pgtest: removing %s: %w", s.dir, err)
	}
	return nil
}
