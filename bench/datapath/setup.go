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
	o        options
	dir      string
	scenario string // scenarioHTTP, scenarioGRPC or scenarioTCP
	tools
	// start is when the scenario began (its report says how long it took).
	start time.Time

	hc *http.Client
	// sink counts the bytes the TCP scenario's backend received.
	sink     *sink
	backend  *http.Server
	payload  []byte
	children []*child
	cp       *child
	apiURL   string
	// sidecarAdmin maps each trellis-dp to its admin address.
	sidecarAdmin map[*proxy]string
	// statsBefore are the sidecars' counters before the measurements
	// (see checkSidecarStats).
	statsBefore map[*proxy]map[string]uint64

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
	label string
	// kind is kindTrellis or kindHAProxy; "" for the direct path.
	kind string
	// mtls says whether the hop between the two proxies is mTLS.
	mtls bool
	// url is what the load generator is given: an http:// URL, or
	// host:port for gRPC and TCP.
	url     string
	proxies []*proxy // client side first; none for the direct path
	// tlsCheck says what the mTLS pair's counters showed (Trellis).
	tlsCheck string
	fixed    map[float64]*result // by request rate
	max      map[int]*result     // by connection count
	tcp      result              // TCP scenario: bytes in requests
}

// The kinds of proxy pair.
const (
	kindTrellis = "trellis"
	kindHAProxy = "haproxy"
)

// result sums a measurement's rounds.
type result struct {
	hist     histogram
	requests int64
	seconds  float64
	slow     []float64 // rounds' achieved rate when below 95% of the target
	rounds   []round
}

// round is what one fortio run measured, to show how much rounds differ
// (rate is bytes/s in the TCP scenario).
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
	idleRSS, peakRSS int64 // KiB
	idleCPU          float64
	// cpu is the CPU seconds spent during a measurement and rss the
	// largest RSS (KiB) seen during it, by measurement: fixedKey(rate),
	// maxKey(conns), tcpKey.
	cpu map[string]float64
	rss map[string]int64
}

func newProxy(c *child) *proxy {
	return &proxy{child: c, cpu: map[string]float64{}, rss: map[string]int64{}}
}

// The keys of proxy.cpu and proxy.rss.
func fixedKey(rate float64) string { return fmt.Sprintf("fixed-%g", rate) }
func maxKey(conns int) string      { return fmt.Sprintf("max-%d", conns) }

const tcpKey = "tcp"

func (b *bench) setUp(ctx context.Context) error {
	b.loadBefore = loadAverage()
	b.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	b.sidecarAdmin = map[*proxy]string{}
	if err := os.MkdirAll(b.logDir(), 0o755); err != nil {
		return err
	}
	if b.haproxyBin == "" && b.o.haproxy != "off" {
		b.notes = append(b.notes, "HAProxy is not installed (apt-get install -y haproxy), so there is no HAProxy baseline in this run.")
	}
	variants := b.o.variants()
	free, err := freePorts(3 + 8*len(variants))
	if err != nil {
		return err
	}
	next := func() int {
		p := free[0]
		free = free[1:]
		return p
	}
	appAddr, err := b.startBackend(ctx)
	if err != nil {
		return err
	}
	direct := &target{label: "direct", url: b.targetURL(appAddr)}
	if err := b.waitPath(ctx, direct.url, nil); err != nil {
		return fmt.Errorf("the backend: %w", err)
	}
	b.targets = append(b.targets, direct)

	// The control plane and the Trellis pairs: the plaintext one in mesh
	// default, the mTLS one in its own mesh, so that both are measured in
	// the same rounds.
	apiAddr, dpServerAddr := hostPort(next()), hostPort(next())
	if err := b.startCP(ctx, apiAddr, hostPort(next()), dpServerAddr); err != nil {
		return err
	}
	b.apiURL = "http://" + apiAddr
	for _, mtls := range variants {
		t, err := b.startTrellisPair(ctx, mtls, appAddr, dpServerAddr, next)
		if err != nil {
			return err
		}
		b.targets = append(b.targets, t)
	}

	if b.haproxyBin != "" {
		for _, mtls := range variants {
			t, err := b.startHAProxyPair(ctx, mtls, appAddr, hostPort(next()), hostPort(next()))
			if err != nil {
				return err
			}
			b.targets = append(b.targets, t)
		}
	}
	return nil
}

// mtlsMesh is the mesh of the mTLS Trellis pair; the plaintext pair is in
// mesh default.
const mtlsMesh = "mtls"

// startTrellisPair starts a server sidecar in front of the backend and a
// client sidecar whose outbound listener leads to it, in mesh default
// (plaintext) or, with mtls, in a mesh with mTLS STRICT (builtin CA) and
// an allow-all MeshTrafficPermission. It returns the path once a request
// has passed.
func (b *bench) startTrellisPair(ctx context.Context, mtls bool, appAddr, dpServerAddr string, next func() int) (*target, error) {
	mesh, label, suffix, prefix := "default", "Trellis pair", "", "bench"
	if mtls {
		mesh, label, suffix, prefix = mtlsMesh, "Trellis pair, mTLS", " (mTLS)", "bench-mtls"
		if err := b.secureMesh(ctx, mesh); err != nil {
			return nil, err
		}
	}
	appPort := appAddr[strings.LastIndexByte(appAddr, ':')+1:]
	serverInbound := next()
	serverYAML := fmt.Sprintf(serverDataplane, mesh, prefix+"-server", serverInbound, appPort, b.scenario)
	// The client sidecar's own app does not exist: nothing calls its
	// inbound listener.
	outbound := next()
	clientYAML := fmt.Sprintf(clientDataplane, mesh, prefix+"-client", next(), next(), outbound)
	server, err := b.startSidecar(ctx, "trellis-dp server"+suffix, mesh, prefix+"-server", serverYAML, dpServerAddr, hostPort(next()))
	if err != nil {
		return nil, err
	}
	client, err := b.startSidecar(ctx, "trellis-dp client"+suffix, mesh, prefix+"-client", clientYAML, dpServerAddr, hostPort(next()))
	if err != nil {
		return nil, err
	}
	for _, p := range []*proxy{client, server} {
		if err := b.waitOK(ctx, "http://"+b.sidecarAdmin[p]+"/ready", p.child, nil); err != nil {
			return nil, err
		}
	}
	t := &target{label: label, kind: kindTrellis, mtls: mtls, url: b.targetURL(hostPort(outbound)), proxies: []*proxy{client, server}}
	progress("waiting for a request to pass client sidecar → server sidecar → backend (%s)", variantName(mtls))
	if err := b.waitPath(ctx, t.url, client.child); err != nil {
		return nil, fmt.Errorf("through the %s: %w", label, err)
	}
	if mtls {
		b.refusesPlaintext(ctx, "the mTLS server sidecar's inbound listener", hostPort(serverInbound))
	}
	return t, nil
}

// refusesPlaintext records a failure when a plaintext request to addr,
// the server side of an mTLS hop, goes through: a GET (HTTP), a gRPC ping
// (gRPC) or bytes reaching the backend (TCP).
func (b *bench) refusesPlaintext(ctx context.Context, what, addr string) {
	var ok bool
	switch b.scenario {
	case scenarioHTTP:
		ok, _ = b.get(ctx, "http://"+addr+"/", nil)
	case scenarioGRPC:
		ok, _ = b.grpcPing(ctx, addr)
	case scenarioTCP:
		ok, _ = b.tcpProbe(ctx, addr, time.Second)
	}
	if ok {
		b.failures = append(b.failures, what+" ("+addr+") let a plaintext request through")
	}
}

// secureMesh creates mesh with mTLS STRICT (a builtin CA) and a
// MeshTrafficPermission allowing all its traffic (without one, mTLS
// denies everything), through the API as "trellisctl apply" would.
func (b *bench) secureMesh(ctx context.Context, mesh string) error {
	progress("creating mesh %s: mTLS STRICT (builtin CA), allow-all MeshTrafficPermission", mesh)
	for _, r := range []struct{ path, body string }{
		{"/meshes/" + mesh, `{"type":"Mesh","name":"` + mesh + `","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","mode":"STRICT"}]}}`},
		{"/meshes/" + mesh + "/meshtrafficpermissions/allow-all", `{"type":"MeshTrafficPermission","name":"allow-all","mesh":"` + mesh + `","spec":{"targetRef":{"kind":"Mesh"},"from":[{"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"}}]}}`},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.apiURL+r.path, strings.NewReader(r.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.hc.Do(req)
		if err != nil {
			return fmt.Errorf("PUT %s: %w", r.path, err)
		}
		msg, _ := readAllLimit(resp.Body, 4<<10)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT %s: %s: %s", r.path, resp.Status, strings.TrimSpace(string(msg)))
		}
	}
	return nil
}

func (b *bench) logDir() string { return filepath.Join(b.dir, "logs") }

// tearDown stops the proxies, then the control plane, then the backend.
func (b *bench) tearDown() {
	for i := len(b.children) - 1; i >= 0; i-- {
		b.children[i].stop()
	}
	if b.sink != nil {
		b.sink.close()
	}
	if b.backend != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if b.backend.Shutdown(ctx) != nil {
			b.backend.Close()
		}
	}
}

// startBackend starts the scenario's backend and returns its address: the
// HTTP server answering 1 KiB bodies or the TCP sink in this process, or
// fortio's gRPC ping server (its own process, like the load generator).
func (b *bench) startBackend(ctx context.Context) (string, error) {
	b.payload = bytes.Repeat([]byte("0123456789abcdef"), (b.o.bodySize+15)/16)[:b.o.bodySize]
	switch b.scenario {
	case scenarioGRPC:
		return b.startGRPCBackend(ctx)
	case scenarioTCP:
		return b.startSink()
	}
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
mesh: %s
name: %s
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %s
    tags:
      kuma.io/service: backend
      kuma.io/protocol: %s
`
	clientDataplane = `type: Dataplane
mesh: %s
name: %s
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
func (b *bench) startSidecar(ctx context.Context, name, mesh, dpName, dataplane, dpServerAddr, adminAddr string) (*proxy, error) {
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
	if b.o.profileDir != "" {
		args = append(args, "--enable-pprof")
	}
	token, err := b.dataplaneToken(ctx, mesh, dpName)
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
	c, err := startChild(name, filepath.Join(b.logDir(), slug(name)+".log"), b.dpBin, args, inheritedEnv())
	if err != nil {
		return nil, err
	}
	b.children = append(b.children, c)
	p := newProxy(c)
	b.sidecarAdmin[p] = adminAddr
	return p, nil
}

// dataplaneToken asks the control plane for a dataplane token for the
// Dataplane name in mesh, as "trellisctl generate dataplane-token"
// does (the API takes loopback callers as admin). It returns "" when the
// control plane has no POST /tokens/dataplane (older builds, which need
// no token).
func (b *bench) dataplaneToken(ctx context.Context, mesh, name string) (string, error) {
	body := strings.NewReader(`{"name":"` + name + `","mesh":"` + mesh + `"}`)
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
// both sides (gRPC: the same with HTTP/2 on both sides, "proto h2"; TCP:
// mode tcp), no logging, default threads (one per CPU), like the
// sidecars (GOMAXPROCS = CPUs). The bind and server lines take TLS
// options on the hop between the two HAProxies of the mTLS pair; TLS 1.3
// only, as between sidecars.
const haproxyConfig = `global
    maxconn 4096
    ssl-default-bind-options ssl-min-ver TLSv1.3
    ssl-default-server-options ssl-min-ver TLSv1.3

defaults
%s
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend in
    bind %s%s
    default_backend out

backend out
    server upstream %s%s
`

// startHAProxyPair runs two HAProxies: the client one on clientAddr
// forwarding to the server one, which forwards to the backend app. With
// mtls, the hop between them is TLS with client certificates, verified on
// both sides against a test CA.
func (b *bench) startHAProxyPair(ctx context.Context, mtls bool, appAddr, clientAddr, serverAddr string) (*target, error) {
	label, suffix, clientTLS, serverTLS := "HAProxy pair", "", "", ""
	if mtls {
		label, suffix = "HAProxy pair, mTLS", " (mTLS)"
		pki, err := writeHAProxyPKI(filepath.Join(b.dir, "haproxy-pki"))
		if err != nil {
			return nil, fmt.Errorf("the HAProxy pair's certificates: %w", err)
		}
		clientTLS = fmt.Sprintf(" ssl crt %s ca-file %s verify required verifyhost %s", pki.client, pki.ca, haproxyServerName)
		serverTLS = fmt.Sprintf(" ssl crt %s ca-file %s verify required", pki.server, pki.ca)
	}
	progress("starting the HAProxy pair (%s, %s)", b.haproxyVersion, variantName(mtls))
	var pair []*proxy
	for _, hop := range []struct{ name, listen, bindTLS, upstream, upstreamTLS string }{
		{"haproxy client" + suffix, clientAddr, "", serverAddr, clientTLS},
		{"haproxy server" + suffix, serverAddr, serverTLS, appAddr, ""},
	} {
		cfg := filepath.Join(b.dir, slug(hop.name)+".cfg")
		mode, h2 := "    mode http\n    option http-keep-alive", ""
		switch b.scenario {
		case scenarioGRPC:
			h2 = " proto h2"
		case scenarioTCP:
			mode = "    mode tcp"
		}
		if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, mode, hop.listen, hop.bindTLS+h2, hop.upstream, hop.upstreamTLS+h2), 0o644); err != nil {
			return nil, fmt.Errorf("writing the HAProxy config: %w", err)
		}
		c, err := startChild(hop.name, filepath.Join(b.logDir(), slug(hop.name)+".log"),
			b.haproxyBin, []string{"-db", "-f", cfg}, os.Environ())
		if err != nil {
			return nil, err
		}
		b.children = append(b.children, c)
		pair = append(pair, newProxy(c))
	}
	t := &target{label: label, kind: kindHAProxy, mtls: mtls, url: b.targetURL(clientAddr), proxies: pair}
	if err := b.waitPath(ctx, t.url, pair[0].child); err != nil {
		return nil, fmt.Errorf("through the %s: %w", label, err)
	}
	if mtls {
		b.refusesPlaintext(ctx, "the mTLS server HAProxy", serverAddr)
	}
	return t, nil
}

// variantName names a pair's transport between its two proxies.
func variantName(mtls bool) string {
	if mtls {
		return "mTLS"
	}
	return "plaintext"
}

// targetURL is what the load generator is given for a path whose first
// hop listens on addr.
func (b *bench) targetURL(addr string) string {
	if b.scenario == scenarioHTTP {
		return "http://" + addr + "/"
	}
	return addr
}

// waitPath waits until a request passes the path at url (a target's
// url): a GET answered 200 with the backend's body, a gRPC ping answered,
// bytes reaching the TCP sink. It gives up when proc (nil for the
// backend) exits or after readyTimeout.
func (b *bench) waitPath(ctx context.Context, url string, proc *child) error {
	return b.waitFor(ctx, url, proc, func() (bool, string) {
		switch b.scenario {
		case scenarioGRPC:
			return b.grpcPing(ctx, url)
		case scenarioTCP:
			return b.tcpProbe(ctx, url, 2*time.Second)
		}
		return b.get(ctx, url, b.payload)
	})
}

// waitOK polls url until it answers 200 (with body want, when not nil).
// It gives up when proc exits or after readyTimeout.
func (b *bench) waitOK(ctx context.Context, url string, proc *child, want []byte) error {
	return b.waitFor(ctx, url, proc, func() (bool, string) { return b.get(ctx, url, want) })
}

// waitFor polls try until it succeeds, proc (when not nil) or another
// child exits, or readyTimeout passes.
func (b *bench) waitFor(ctx context.Context, url string, proc *child, try func() (bool, string)) error {
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		ok, why := try()
		if ok {
			return nil
		}
		last = why
		if proc != nil && proc.exited() {
			return proc.failure("exited while starting")
		}
		for _, c := range b.children {
			if c.exited() {
				return c.failure("exited")
			}
		}
		if time.Now().After(deadline) {
			if proc == nil {
				return fmt.Errorf("not ready within %s (%s: %s)", readyTimeout, url, last)
			}
			return proc.failure(fmt.Sprintf("was not ready within %s (%s: %s)", readyTimeout, url, last))
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
