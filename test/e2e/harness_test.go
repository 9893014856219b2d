// Package e2e drives the built binaries the way a user does: trellis-cp
// processes on real stores, trellisctl and plain HTTP against them.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trellis-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", dir+"/", "github.com/trellis-mesh/trellis/cmd/...")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a goroutine-safe buffer for a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// controlPlane is one running trellis-cp process.
type controlPlane struct {
	t   *testing.T
	URL string
	// DPAddr is the data-plane server's host:port; DataDir its data dir.
	DPAddr  string
	DataDir string
	// HTTPSAddr is the HTTPS API's host:port.
	HTTPSAddr string
	env       []string
	cmd       *exec.Cmd
	log       *syncBuffer
	stopped   bool
}

// startCP runs `trellis-cp run` with env (TRELLIS_* settings) on a free API
// port and waits until it is ready.
func startCP(t *testing.T, env map[string]string) *controlPlane {
	t.Helper()
	addr, dpAddr, httpsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	vars := []string{
		"HOME=" + os.Getenv("HOME"),
		"PATH=" + os.Getenv("PATH"),
		"TRELLIS_API_HTTP_ADDR=" + addr,
		"TRELLIS_API_HTTPS_ADDR=" + httpsAddr,
		"TRELLIS_DP_SERVER_ADDR=" + dpAddr,
	}
	dataDir, ok := env["TRELLIS_DATA_DIR"]
	if !ok {
		dataDir = t.TempDir()
		vars = append(vars, "TRELLIS_DATA_DIR="+dataDir)
	}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	cp := &controlPlane{t: t, URL: "http://" + addr, DPAddr: dpAddr, HTTPSAddr: httpsAddr, DataDir: dataDir, env: vars}
	cp.start()
	t.Cleanup(func() { cp.Stop() })
	return cp
}

func (cp *controlPlane) start() {
	t := cp.t
	t.Helper()
	cp.log = &syncBuffer{}
	cp.cmd = exec.Command(filepath.Join(binDir, "trellis-cp"), "run")
	cp.cmd.Env = cp.env
	cp.cmd.Stdout, cp.cmd.Stderr = cp.log, cp.log
	if err := cp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cp.stopped = false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(cp.URL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if cp.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("trellis-cp did not become ready within 30 s; its log:\n%s", cp.log)
}

// Stop sends SIGTERM and returns how long the process took to exit.
func (cp *controlPlane) Stop() time.Duration {
	if cp.stopped {
		return 0
	}
	cp.stopped = true
	start := time.Now()
	_ = cp.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cp.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			cp.t.Errorf("trellis-cp exited with %v after SIGTERM; log:\n%s", err, cp.log)
		}
	case <-time.After(15 * time.Second):
		_ = cp.cmd.Process.Kill()
		<-done
		cp.t.Errorf("trellis-cp did not exit within 15 s of SIGTERM; log:\n%s", cp.log)
	}
	return time.Since(start)
}

// Restart stops the process and starts it again with the same settings.
func (cp *controlPlane) Restart() {
	cp.t.Helper()
	cp.Stop()
	cp.start()
}

// ctl runs trellisctl against cp and returns stdout, stderr and the error.
func (cp *controlPlane) ctl(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(binDir, "trellisctl"), append([]string{"--api-url", cp.URL}, args...)...)
	cmd.Env = []string{"HOME=" + cp.t.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// mustCtl runs trellisctl and fails the test on a non-zero exit.
func (cp *controlPlane) mustCtl(stdin string, args ...string) string {
	cp.t.Helper()
	out, errOut, err := cp.ctl(stdin, args...)
	if err != nil {
		cp.t.Fatalf("trellisctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}
