package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoRun is one `trellisctl demo` process and its combined output.
type demoRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startDemo runs `trellisctl demo args...` with a private HOME and TMPDIR
// (so its temporary data dir lands in the test's temp dir). The process
// is stopped when the test ends.
func startDemo(t *testing.T, bin string, args ...string) *demoRun {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(bin, append([]string{"demo"}, args...)...)
	cmd.Env = []string{"HOME=" + tmp, "TMPDIR=" + tmp, "PATH=" + os.Getenv("PATH")}
	d := &demoRun{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-d.done
			}
		}
	})
	return d
}

// waitFor waits until the output matches re and returns the first
// submatch; it fails the test if the process exits or time runs out.
func (d *demoRun) waitFor(re *regexp.Regexp, timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(d.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-d.done:
			d.t.Fatalf("trellisctl demo exited (%v) before printing %s; output:\n%s", d.err, re, d.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	d.t.Fatalf("trellisctl demo did not print %s within %s; output:\n%s", re, timeout, d.out)
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (d *demoRun) stop() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("trellisctl demo did not exit within 20 s of SIGTERM; output:\n%s", d.out)
	}
	if d.err != nil {
		d.t.Errorf("trellisctl demo exited with %v after SIGTERM; output:\n%s", d.err, d.out)
	}
}

var (
	demoFrontendURL = regexp.MustCompile(`Frontend, through its sidecar:\s+(http://127\.0\.0\.1:\d+/)`)
	demoDataDir     = regexp.MustCompile(`Data dir: (\S+)`)
)

// fetchFrontend GETs the frontend and returns the backend answer it shows.
func fetchFrontend(t *testing.T, url string) (map[string]any, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	js, ok := strings.CutPrefix(strings.TrimSpace(body), "frontend → backend: ")
	var answer map[string]any
	if resp.StatusCode != 200 || !ok || json.Unmarshal([]byte(js), &answer) != nil {
		t.Fatalf("GET %s = %d, body:\n%s\nwant 200 and \"frontend → backend: <backend JSON>\"", url, resp.StatusCode, body)
	}
	return answer, body
}

// TestDemo runs `trellisctl demo` as a newcomer would and sends requests
// through the frontend's sidecar, the frontend app, its sidecar's outbound
// listener and a backend's sidecar to the backend instances.
func TestDemo(t *testing.T) {
	_, apiPort, _ := net.SplitHostPort(freeAddr(t))
	d := startDemo(t, filepath.Join(binDir, "trellisctl"), "--api-port", apiPort, "--backends", "2")
	frontend := d.waitFor(demoFrontendURL, 90*time.Second)
	dataDir := d.waitFor(demoDataDir, time.Second)
	apiURL := "http://127.0.0.1:" + apiPort
	if !strings.Contains(d.out.String(), "--api-url "+apiURL+" inspect dataplanes") {
		t.Errorf("the output does not show how to inspect the dataplanes at %s:\n%s", apiURL, d.out)
	}

	// Both backend instances answer, in turn, through the mesh.
	seen := map[string]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		answer, body := fetchFrontend(t, frontend)
		if answer["service"] != "backend" {
			t.Fatalf("the frontend shows %s, want the backend's JSON", body)
		}
		inst, _ := answer["instance"].(string)
		seen[inst] = true
		time.Sleep(50 * time.Millisecond)
	}
	if !seen["backend-1"] || !seen["backend-2"] {
		t.Errorf("instances that answered: %v, want backend-1 and backend-2", seen)
	}

	// The control plane API is on the port asked for, and knows the proxies.
	cp := &controlPlane{t: t, URL: apiURL}
	out := cp.mustCtl("", "inspect", "dataplanes")
	for _, name := range []string{"frontend-1", "backend-1", "backend-2"} {
		if !regexp.MustCompile(`(?m)^default\s+` + name + `\s+Online`).MatchString(out) {
			t.Errorf("inspect dataplanes does not show %s Online:\n%s", name, out)
		}
	}
	for _, log := range []string{"trellis-cp.log", "dp-frontend-1.log", "dp-backend-1.log", "dp-backend-2.log", "apps.log"} {
		if _, err := os.Stat(filepath.Join(dataDir, "logs", log)); err != nil {
			t.Errorf("log %s: %v", log, err)
		}
	}

	d.stop()
	if !strings.Contains(d.out.String(), "Stopped.") {
		t.Errorf("the output does not end with Stopped.:\n%s", d.out)
	}
	if _, err := http.Get(apiURL + "/ready"); err == nil {
		t.Errorf("the control plane still answers at %s after the demo stopped", apiURL)
	}
	if _, err := http.Get(frontend); err == nil {
		t.Errorf("the frontend sidecar still answers at %s after the demo stopped", frontend)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary data dir %s is still there (%v)", dataDir, err)
	}
}

// TestDemoWithoutTheOtherBinaries runs a trellisctl that has no
// trellis-cp next to it or on PATH: it must say to run make build.
func TestDemoWithoutTheOtherBinaries(t *testing.T) {
	lone := filepath.Join(t.TempDir(), "trellisctl")
	raw, err := os.ReadFile(filepath.Join(binDir, "trellisctl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lone, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lone, "demo")
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("trellisctl demo without trellis-cp: %v, want exit status 1; output:\n%s", err, out)
	}
	for _, want := range []string{"trellis-cp not found", "make build"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
}
