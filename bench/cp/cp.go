package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trellis-mesh/trellis/bench/internal/procstat"
	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/cp"
)

// controlPlane is the trellis-cp under test: a child process, or (for the
// package's test) one running in this process.
type controlPlane struct {
	apiURL, dpAddr, diagAddr string
	// caFile is the DP server's certificate, which proxies trust.
	caFile  string
	pid     int
	logPath string

	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan error
}

// cpEnv is the trellis-cp configuration of a run: memory store, no
// dataplane tokens, quiet logs.
func cpEnv(dataDir, apiAddr, httpsAddr, dpAddr, diagAddr, store string) map[string]string {
	env := map[string]string{
		"TRELLIS_DATA_DIR":                    dataDir,
		"TRELLIS_API_HTTP_ADDR":               apiAddr,
		"TRELLIS_API_HTTPS_ADDR":              httpsAddr,
		"TRELLIS_DP_SERVER_ADDR":              dpAddr,
		"TRELLIS_KDS_ADDR":                    "127.0.0.1:0",
		"TRELLIS_STORE_TYPE":                  store,
		"TRELLIS_DP_SERVER_AUTHN":             "none",
		"TRELLIS_LOG_LEVEL":                   "warn",
		"TRELLIS_DIAGNOSTICS_ADDR":            diagAddr,
		"TRELLIS_DEFAULTS_SKIP_MESH_CREATION": "true",
	}
	return env
}

// startCP starts trellis-cp from bin (in this process when bin is empty)
// and waits until it is ready.
func startCP(ctx context.Context, bin, dir, store string, diagnostics bool) (*controlPlane, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, err
	}
	diag := ""
	if diagnostics {
		diag = addrs[3]
	}
	dataDir := filepath.Join(dir, "cp-data")
	env := cpEnv(dataDir, addrs[0], addrs[1], addrs[2], diag, store)
	c := &controlPlane{apiURL: "http://" + addrs[0], dpAddr: addrs[2], diagAddr: diag,
		caFile: filepath.Join(dataDir, "certs", "dp-server.crt"), done: make(chan error, 1)}
	if bin == "" {
		if err := c.startInProcess(env); err != nil {
			return nil, err
		}
	} else if err := c.startProcess(bin, dir, env); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *controlPlane) startProcess(bin, dir string, env map[string]string) error {
	c.logPath = filepath.Join(dir, "trellis-cp.log")
	logf, err := os.Create(c.logPath)
	if err != nil {
		return fmt.Errorf("creating the control plane's log: %w", err)
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), envList(env)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	c.cmd, c.pid = cmd, cmd.Process.Pid
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	return nil
}

func (c *controlPlane) startInProcess(env map[string]string) error {
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.pid = cancel, os.Getpid()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { c.done <- cp.Run(ctx, cfg, log, nil) }()
	return nil
}

func (c *controlPlane) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.apiURL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(c.caFile); err == nil {
					return nil
				}
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("trellis-cp exited before it was ready: %v%s", err, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("trellis-cp not ready within 60 s%s", c.logTail())
}

// stop ends the control plane (SIGTERM, then SIGKILL after 10 s).
func (c *controlPlane) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// exited reports whether the control plane has stopped on its own.
func (c *controlPlane) exited() error {
	select {
	case err := <-c.done:
		c.done <- err
		return fmt.Errorf("trellis-cp exited: %v%s", err, c.logTail())
	default:
		return nil
	}
}

func (c *controlPlane) logTail() string {
	if c.logPath == "" {
		return ""
	}
	raw, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "; its log ends with:\n  " + strings.Join(lines, "\n  ")
}

// put applies a resource through the REST API (PUT, JSON body).
func (c *controlPlane) put(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.apiURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// profile fetches a pprof profile from the diagnostics server into file.
func (c *controlPlane) profile(ctx context.Context, query, file string) error {
	if c.diagAddr == "" {
		return errors.New("diagnostics are off")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.diagAddr+"/debug/pprof/"+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching profile %s: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching profile %s: %s", query, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// usage is a process's CPU time and memory at one moment.
type usage struct {
	at     time.Time
	cpu    float64 // seconds, user + system
	rssKiB int64
}

func (c *controlPlane) usage() (usage, error) {
	return processUsage(c.pid)
}

func processUsage(pid int) (usage, error) {
	u := usage{at: time.Now()}
	var err error
	if u.cpu, err = procstat.CPUSeconds(pid); err != nil {
		return u, err
	}
	u.rssKiB, err = procstat.StatusKiB(pid, "VmRSS")
	return u, err
}

func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// heapInuse reads the control plane's HeapInuse, after a collection, from
// its diagnostics server (0 when diagnostics are off).
func heapInuse(ctx context.Context, c *controlPlane) int64 {
	if c.diagAddr == "" {
		return 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.diagAddr+"/debug/pprof/heap?debug=1&gc=1", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# HeapInuse = "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
