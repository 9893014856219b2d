package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// readyTimeout bounds each start-up wait.
const readyTimeout = 30 * time.Second

// bench is one run: its tools, processes, paths and findings.
type bench struct {
	o   options
	dir string

	cpBin, dpBin, fortioBin, haproxyBin string
	fortioVersion, haproxyVersion       string
	// binaries says where trellis-cp and trellis-dp come from.
	binaries string

	hc       *http.Client
	backend  *http.Server
	payload  []byte
	children []*child
	cp       *child
	apiURL   string
	// sidecarAdmin maps each trellis-dp to its admin address.
	sidecarAdmin map[*proxy]string
	// startErrors are the sidecars' error counters before the
	// measurements (see checkSidecarStats).
	startErrors map[string]uint64

	// targets are the measured paths: direct first (the baseline), then
	// the Trellis pair, then the HAProxy pair when there is one.
	targets []*target

	// loadBefore, loadMid and loadAfter are the load average at the
	// start, after the fixed-rate rounds and at the end.
	loadBefore, loadMid, loadAfter string
	// failures are correctness problems (exit 1); notes are printed with
	// the tables.
	failures, notes []string
}

// target is one path from the load generator to the backend.
type target struct {
	label   string
	url     string
	proxies []*proxy // client side first; none for the direct path
	fixed   result
	max     map[int]*result // by connection count
}

// result sums a measurement's rounds.
type result struct {
	hist     histogram
	requests int64
	seconds  float64
	slow     []float64 // rounds' achieved rate when below 95% of the target
	rounds   []round
}

// round is what one fortio run measured, to show how much rounds differ.
type round struct {
	p50, p99, rate float64
}

// rate is the achieved request rate over all rounds.
func (r *result) rate() float64 {
	if r.seconds == 0 {
		return 0
	}
	return float64(r.requests) / r.seconds
}

// proxy is one proxy process and what was measured of it.
type proxy struct {
	*child
	idleRSS, loadRSS, peakRSS int64 // KiB
	idleCPU                   float64
	loadCPU                   float64 // CPU seconds during the fixed-rate rounds
}

func (b *bench) setUp(ctx context.Context) error {
	b.loadBefore = loadAverage()
	b.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	b.sidecarAdmin = map[*proxy]string{}
	if err := os.MkdirAll(b.logDir(), 0o755); err != nil {
		return err
	}
	if err := b.findTools(ctx); err != nil {
		return err
	}
	ports, err := freePorts(11)
	if err != nil {
		return err
	}
	appAddr, err := b.startBackend()
	if err != nil {
		return err
	}
	b.targets = append(b.targets, &target{label: "direct", url: "http://" + appAddr + "/"})

	// The control plane and the Trellis pair.
	apiAddr, dpServerAddr := hostPort(ports[0]), hostPort(ports[1])
	if err := b.startCP(ctx, apiAddr, hostPort(ports[2]), dpServerAddr); err != nil {
		return err
	}
	appPort := appAddr[strings.LastIndexByte(appAddr, ':')+1:]
	serverYAML := fmt.Sprintf(serverDataplane, ports[3], appPort)
	// The client sidecar's own app does not exist: nothing calls its
	// inbound listener.
	clientYAML := fmt.Sprintf(clientDataplane, ports[4], ports[5], ports[6])
	b.apiURL = "http://" + apiAddr
	server, err := b.startSidecar(ctx, "trellis-dp server", "bench-server", serverYAML, dpServerAddr, hostPort(ports[7]))
	if err != nil {
		return err
	}
	client, err := b.startSidecar(ctx, "trellis-dp client", "bench-client", clientYAML, dpServerAddr, hostPort(ports[8]))
	if err != nil {
		return err
	}
	for _, p := range []*proxy{client, server} {
		if err := b.waitOK(ctx, "http://"+b.sidecarAdmin[p]+"/ready", p.child, nil); err != nil {
			return err
		}
	}
	trellis := &target{label: "Trellis pair", url: "http://" + hostPort(ports[6]) + "/", proxies: []*proxy{client, server}}
	progress("waiting for a request to pass client sidecar → server sidecar → backend")
	if err := b.waitOK(ctx, trellis.url, client.child, b.payload); err != nil {
		return fmt.Errorf("through the Trellis pair: %w", err)
	}
	b.targets = append(b.targets, trellis)

	if b.haproxyBin != "" {
		ha, err := b.startHAProxyPair(ctx, appAddr, hostPort(ports[9]), hostPort(ports[10]))
		if err != nil {
			return err
		}
		b.targets = append(b.targets, ha)
	}
	return nil
}

func (b *bench) logDir() string { return filepath.Join(b.dir, "logs") }

// tearDown stops the proxies, then the control plane, then the backend.
func (b *bench) tearDown() {
	for i := len(b.children) - 1; i >= 0; i-- {
		b.children[i].stop()
	}
	if b.backend != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if b.backend.Shutdown(ctx) != nil {
			b.backend.Close()
		}
	}
}

// startBackend serves the 1 KiB body in this process on a free loopback
// port and returns its address.
func (b *bench) startBackend() (string, error) {
	b.payload = bytes.Repeat([]byte("0123456789abcdef"), (b.o.bodySize+15)/16)[:b.o.bodySize]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting the backend: %w", err)
	}
	length := strconv.Itoa(len(b.payload))
	b.backend = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/octet-stream"}
			h["Content-Length"] = []string{length}
			_, _ = w.Write(b.payload)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = b.backend.Serve(ln) }()
	return ln.Addr().String(), nil
}

// startCP runs trellis-cp on the memory store, every listener on loopback,
// and waits until it is ready and has written its DP server certificate.
func (b *bench) startCP(ctx context.Context, apiAddr, apiHTTPSAddr, dpServerAddr string) error {
	progress("starting the control plane (trellis-cp, memory store)")
	env := append(inheritedEnv(),
		"TRELLIS_STORE_TYPE=memory",
		"TRELLIS_DATA_DIR="+b.cpDataDir(),
		"TRELLIS_API_HTTP_ADDR="+apiAddr,
		"TRELLIS_API_HTTPS_ADDR="+apiHTTPSAddr,
		"TRELLIS_DP_SERVER_ADDR="+dpServerAddr,
	)
	cp, err := startChild("trellis-cp", filepath.Join(b.logDir(), "trellis-cp.log"), b.cpBin, []string{"run"}, env)
	if err != nil {
		return err
	}
	b.cp = cp
	b.children = append(b.children, cp)
	if err := b.waitOK(ctx, "http://"+apiAddr+"/ready", cp, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := os.Stat(b.caCert()); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return cp.failure("wrote no " + b.caCert())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *bench) cpDataDir() string { return filepath.Join(b.dir, "cp") }

// caCert is the certificate the control plane's DP server presents.
func (b *bench) caCert() string { return filepath.Join(b.cpDataDir(), "certs", "dp-server.crt") }

// The Dataplanes of the two sidecars, filled with ports by fmt.Sprintf.
const (
	serverDataplane = `type: Dataplane
mesh: default
name: bench-server
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %s
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
`
	clientDataplane = `type: Dataplane
mesh: default
name: bench-client
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags:
      kuma.io/service: client
      kuma.io/protocol: http
  outbound:
  - port: %d
    tags:
      kuma.io/service: backend
`
)

// startSidecar writes the Dataplane file (and a dataplane token for it,
// when the control plane issues them) and runs trellis-dp for it.
func (b *bench) startSidecar(ctx context.Context, name, dpName, dataplane, dpServerAddr, adminAddr string) (*proxy, error) {
	progress("starting the %s sidecar", name)
	path := filepath.Join(b.dir, dpName+".yaml")
	if err := os.WriteFile(path, []byte(dataplane), 0o644); err != nil {
		return nil, fmt.Errorf("writing the Dataplane file: %w", err)
	}
	args := []string{"run",
		"--cp-address", "https://" + dpServerAddr,
		"--dataplane-file", path,
		"--ca-cert-file", b.caCert(),
		"--admin-addr", adminAddr,
		"--drain-timeout", "1s",
	}
	token, err := b.dataplaneToken(ctx, dpName)
	if err != nil {
		return nil, err
	}
	if token != "" {
		tokenPath := filepath.Join(b.dir, dpName+".token")
		if err := os.WriteFile(tokenPath, []byte(token), 0o600); err != nil {
			return nil, fmt.Errorf("writing the dataplane token: %w", err)
		}
		args = append(args, "--dataplane-token-file", tokenPath)
	}
	logName := strings.ReplaceAll(name, " ", "-") + ".log"
	c, err := startChild(name, filepath.Join(b.logDir(), logName), b.dpBin, args, inheritedEnv())
	if err != nil {
		return nil, err
	}
	b.children = append(b.children, c)
	p := &proxy{child: c}
	b.sidecarAdmin[p] = adminAddr
	return p, nil
}

// dataplaneToken asks the control plane for a dataplane token for the
// Dataplane name in mesh default, as "trellisctl generate dataplane-token"
// does (the API takes loopback callers as admin). It returns "" when the
// control plane has no POST /tokens/dataplane (older builds, which need
// no token).
func (b *bench) dataplaneToken(ctx context.Context, name string) (string, error) {
	body := strings.NewReader(`{"name":"` + name + `","mesh":"default"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.apiURL+"/tokens/dataplane", body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking for a dataplane token: %w", err)
	}
	defer resp.Body.Close()
	text, err := readAllLimit(resp.Body, 64<<10)
	switch {
	case err != nil:
		return "", fmt.Errorf("reading the dataplane token: %w", err)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return "", nil
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("POST /tokens/dataplane for %s: %s: %s", name, resp.Status, strings.TrimSpace(string(text)))
	}
	return strings.TrimSpace(string(text)), nil
}

// haproxyConfig is one HAProxy of the pair: HTTP mode with keep-alive on
// both sides, no logging, default threads (one per CPU), like the
// sidecars (GOMAXPROCS = CPUs).
const haproxyConfig = `global
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend in
    bind %s
    default_backend out

backend out
    server upstream %s
`

// startHAProxyPair runs two HAProxies: the client one on clientAddr
// forwarding to the server one, which forwards to the backend app.
func (b *bench) startHAProxyPair(ctx context.Context, appAddr, clientAddr, serverAddr string) (*target, error) {
	progress("starting the HAProxy pair (%s)", b.haproxyVersion)
	var pair []*proxy
	for _, hop := range []struct{ name, listen, upstream string }{
		{"haproxy client", clientAddr, serverAddr},
		{"haproxy server", serverAddr, appAddr},
	} {
		cfg := filepath.Join(b.dir, strings.ReplaceAll(hop.name, " ", "-")+".cfg")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, hop.listen, hop.upstream), 0o644); err != nil {
			return nil, fmt.Errorf("writing the HAProxy config: %w", err)
		}
		c, err := startChild(hop.name, filepath.Join(b.logDir(), strings.ReplaceAll(hop.name, " ", "-")+".log"),
			b.haproxyBin, []string{"-db", "-f", cfg}, os.Environ())
		if err != nil {
			return nil, err
		}
		b.children = append(b.children, c)
		pair = append(pair, &proxy{child: c})
	}
	t := &target{label: "HAProxy pair", url: "http://" + clientAddr + "/", proxies: pair}
	if err := b.waitOK(ctx, t.url, pair[0].child, b.payload); err != nil {
		return nil, fmt.Errorf("through the HAProxy pair: %w", err)
	}
	return t, nil
}

// waitOK polls url until it answers 200 (with body want, when not nil).
// It gives up when proc exits or after readyTimeout.
func (b *bench) waitOK(ctx context.Context, url string, proc *child, want []byte) error {
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		ok, why := b.get(ctx, url, want)
		if ok {
			return nil
		}
		last = why
		if proc.exited() {
			return proc.failure("exited while starting")
		}
		for _, c := range b.children {
			if c.exited() {
				return c.failure("exited")
			}
		}
		if time.Now().After(deadline) {
			return proc.failure(fmt.Sprintf("was not ready within %s (GET %s: %s)", readyTimeout, url, last))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// get GETs url once and says whether it answered 200 (with body want).
func (b *bench) get(ctx context.Context, url string, want []byte) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, err := readAllLimit(resp.Body, 1<<20)
	switch {
	case err != nil:
		return false, err.Error()
	case resp.StatusCode != http.StatusOK:
		return false, resp.Status + ": " + strings.TrimSpace(string(body[:min(len(body), 200)]))
	case want != nil && !bytes.Equal(body, want):
		return false, fmt.Sprintf("a body of %d bytes that is not the backend's", len(body))
	}
	return true, ""
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking free ports: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// inheritedEnv is this process's environment without TRELLIS_* settings,
// which could point the control plane at another store or address.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRELLIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
