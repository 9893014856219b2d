package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/netns"
	"github.com/trellis-mesh/trellis/internal/tlscert"
)

// The uids of the transparent-proxy test: the sidecars' own (their
// traffic is never redirected) and the applications'.
const (
	tproxyDPUID  = 15678
	tproxyAppUID = 14242
)

// tproxyHost is one "host" of the transparent-proxy test: a network
// namespace on the test LAN running an application and its sidecar.
type tproxyHost struct {
	name string
	ns   *netns.NS
	ip   netip.Addr
	// ip6 is its IPv6 address (invalid without IPv6).
	ip6 netip.Addr
	// rules is iptables-save before the transparent proxy was installed,
	// lo the addresses of its loopback interface.
	rules, lo string
}

// TestTransparentProxyTwoHosts runs the mesh the way a user runs it with
// a transparent proxy: on two hosts (network namespaces on a bridge) a
// user installs the redirect rules with `trellisctl install
// transparent-proxy` and runs the application and trellis-dp as their own
// users; the frontend application calls http://backend.mesh/ and
// echo.mesh:9000 knowing nothing of the mesh, and the calls cross the mesh
// with mTLS (IPv4 and IPv6 VIPs in dual stack; direct access to an
// instance's own address too). Without a traffic permission they fail;
// calls to an address outside the mesh pass through or are refused as the
// Mesh says; inbound connections to a port no inbound serves pass
// through; uninstall restores each host's rules exactly.
func TestTransparentProxyTwoHosts(t *testing.T) {
	netns.Require(t)
	w := newTproxyWorld(t)
	w.startSidecars()
	w.meshCalls()
	w.inboundPassthrough()
	w.permissions()
	w.outboundPassthrough()
	w.uninstall()
}

// tproxyWorld is the LAN of the transparent-proxy test: the control plane
// in the root namespace, the frontend and backend hosts with sidecars,
// and a host outside the mesh.
type tproxyWorld struct {
	t    *testing.T
	work string
	// app is the test application's binary.
	app       string
	dualStack bool
	cp        *controlPlane
	// dpServer is the control plane's DP server on the LAN; caFile its
	// certificate.
	dpServer, caFile      string
	front, back, outside  *tproxyHost
	frontDP, backDP       *proxy
	backendHost, echoHost string
}

// newTproxyWorld builds the LAN, starts the control plane (mTLS, an
// allow-all permission, passthrough on) and the applications.
func newTproxyWorld(t *testing.T) *tproxyWorld {
	w := &tproxyWorld{t: t, work: tproxyWorkDir(t)}
	w.app = filepath.Join(w.work, "tproxyapp")
	if out, err := exec.Command("go", "build", "-o", w.app, "./testdata/tproxyapp").CombinedOutput(); err != nil {
		t.Fatalf("building the test application: %v\n%s", err, out)
	}
	// The sidecars run as an unprivileged user: they must be able to run
	// the binaries.
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Dual stack (the default ipFamilyMode) where the kernel and
	// ip6tables can; IPv4 only otherwise.
	w.dualStack = netns.AvailableIPv6() == nil
	if !w.dualStack {
		t.Logf("NOTE: IPv4 only: %v", netns.AvailableIPv6())
	}
	// The LAN: a bridge in a namespace of its own, the root namespace
	// (the control plane) and three hosts on it.
	sub, sub6 := netns.Subnet4(t), netns.Subnet6(t)
	addrs := func(n int) []netip.Prefix {
		if w.dualStack {
			return []netip.Prefix{netns.Host(sub, n), netns.Host(sub6, n)}
		}
		return []netip.Prefix{netns.Host(sub, n)}
	}
	br := netns.NewBridge(t, netns.New(t), nil)
	root := br.Attach(t, nil, addrs(1))
	host := func(name string, n int) *tproxyHost {
		ns := netns.New(t)
		l := br.Attach(t, ns, addrs(n))
		// A default route, as hosts have: the virtual IPs are routed
		// somewhere before the rules redirect them.
		netns.Route(t, ns, "default", root.Addr(4))
		if w.dualStack {
			netns.Route(t, ns, "default", root.Addr(6))
		}
		return &tproxyHost{name: name, ns: ns, ip: l.Addr(4), ip6: l.Addr(6)}
	}
	w.front, w.back, w.outside = host("frontend", 2), host("backend", 3), host("outside", 4)

	// The control plane listens for proxies on the LAN, with a
	// certificate for that address.
	w.caFile = filepath.Join(w.work, "dp-server.crt")
	keyFile := filepath.Join(w.work, "dp-server.key")
	if err := tlscert.Ensure(w.caFile, keyFile, "trellis-cp dp server", []string{root.Addr(4).String()}); err != nil {
		t.Fatal(err)
	}
	w.dpServer = netip.AddrPortFrom(root.Addr(4), uint16(freePort(t))).String()
	w.cp = startCP(t, map[string]string{
		"TRELLIS_DP_SERVER_ADDR":          w.dpServer,
		"TRELLIS_DP_SERVER_TLS_CERT_FILE": w.caFile,
		"TRELLIS_DP_SERVER_TLS_KEY_FILE":  keyFile,
	})
	w.cp.mustCtl(tproxyMesh(true), "apply", "-f", "-")
	w.cp.mustCtl(allowAll, "apply", "-f", "-")

	// The applications: plain servers that know nothing of the mesh.
	tproxyRun(t, w.back, tproxyAppUID, w.app, "serve", "-name", "backend", "-http", "0.0.0.0:8080")
	tproxyRun(t, w.back, tproxyAppUID, w.app, "serve", "-name", "echo", "-tcp", "0.0.0.0:9000")
	tproxyRun(t, w.back, tproxyAppUID, w.app, "serve", "-name", "unmeshed", "-http", "0.0.0.0:7777")
	tproxyRun(t, w.outside, tproxyAppUID, w.app, "serve", "-name", "outside", "-http", "0.0.0.0:8080")
	return w
}

// startSidecars does what a user does on each mesh host: install the
// rules, run the sidecar as its own user.
func (w *tproxyWorld) startSidecars() {
	t := w.t
	family := map[bool]string{true: "dualstack", false: "ipv4"}[w.dualStack]
	var proxies []*proxy
	for _, h := range []*tproxyHost{w.front, w.back} {
		h.rules, h.lo = tproxyRules(t, h), h.ns.MustExec(t, "ip", "addr", "show", "dev", "lo")
		h.ns.MustExec(t, filepath.Join(binDir, "trellisctl"), "install", "transparent-proxy",
			"--dp-uid", strconv.Itoa(tproxyDPUID), "--redirect-dns", "--ip-family-mode", family,
			"--exclude-inbound-ports", "9901")
		token := filepath.Join(w.work, h.name+".token")
		if err := os.WriteFile(token, []byte(strings.TrimSpace(w.cp.mustCtl("", "generate", "dataplane-token",
			"--name", h.name+"-1", "--mesh", "default", "--tag", "kuma.io/service="+tproxyServices(h), "--valid-for", "1h"))), 0o644); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(w.work, h.name+".yaml")
		if err := os.WriteFile(file, []byte(tproxyDataplane(h, w.dualStack)), 0o644); err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, tproxyStartDP(t, h, w.dpServer, w.caFile, file, token))
	}
	w.frontDP, w.backDP = proxies[0], proxies[1]

	// The frontend application calls the backend by its mesh name. The
	// name resolves through the sidecar's DNS server when it runs one;
	// otherwise the test uses the service's virtual IP (and says so).
	w.backendHost, w.echoHost = "backend.mesh", "echo.mesh"
	eventually(t, 30*time.Second, "the frontend sidecar's VIP outbounds", func() error {
		if tproxyVIP(configDump(t, w.frontDP), "outbound:backend", 80) == "" || tproxyVIP(configDump(t, w.frontDP), "echo", 9000) == "" {
			return fmt.Errorf("no redirect filter chains to backend:80 and echo:9000 yet")
		}
		return nil
	})
	if dumpResource(configDump(t, w.frontDP), "listener", "kuma:dns") != nil {
		t.Logf("backend.mesh and echo.mesh resolve through the frontend sidecar's DNS server (dual stack: %v)", w.dualStack)
		return
	}
	w.backendHost = tproxyVIP(configDump(t, w.frontDP), "outbound:backend", 80)
	w.echoHost = tproxyVIP(configDump(t, w.frontDP), "echo", 9000)
	t.Logf("NOTE: the frontend sidecar runs no DNS server (no kuma:dns listener): calling the VIPs %s and %s instead of backend.mesh and echo.mesh", w.backendHost, w.echoHost)
}

// call runs the test application on the frontend host.
func (w *tproxyWorld) call(args ...string) (string, error) {
	return tproxyCall(w.t, w.front, w.app, args...)
}

// expect waits until the frontend application's call answers want.
func (w *tproxyWorld) expect(want string, args ...string) {
	w.t.Helper()
	eventually(w.t, 30*time.Second, strings.Join(args, " ")+" from the frontend application", func() error {
		out, err := w.call(args...)
		if err != nil {
			return err
		}
		if out != want {
			return fmt.Errorf("answer %q, want %q", out, want)
		}
		return nil
	})
}

// meshCalls: the frontend reaches the backend's HTTP and TCP services by
// name (and by their IPv6 VIPs in dual stack) over mTLS; plaintext to the
// backend host's ports is refused.
func (w *tproxyWorld) meshCalls() {
	t := w.t
	w.expect("200 backend /\n", "get", "http://"+w.backendHost+"/")
	w.expect("echo:hello\n", "tcp", w.echoHost+":9000", "hello")
	if w.dualStack {
		// The same over IPv6: the services' IPv6 VIPs go through the
		// IPv6 redirect listener.
		dump := configDump(t, w.frontDP)
		backend6, echo6 := tproxyVIP6(dump, "outbound:backend", 80), tproxyVIP6(dump, "echo", 9000)
		if backend6 == "" || echo6 == "" {
			t.Fatalf("no IPv6 VIP chains in the frontend's outbound:passthrough:ipv6 (backend %q, echo %q)", backend6, echo6)
		}
		w.expect("200 backend /\n", "get", "http://["+backend6+"]/")
		w.expect("echo:hello6\n", "tcp", "["+echo6+"]:9000", "hello6")
		if out, err := w.call("get", "http://["+w.back.ip6.String()+"]:8080/"); err == nil {
			t.Errorf("plaintext call to the backend host's IPv6 port succeeded: %q", out)
		}
	}
	// It crossed the mesh with mTLS: the backend sidecar's inbound
	// redirect listener terminated TLS.
	if n := tproxyStat(t, w.backDP, "listener.0.0.0.0_15006.ssl.handshake"); n < 2 {
		t.Errorf("backend inbound ssl.handshake = %d, want at least 2 (the HTTP and the TCP call)", n)
	}
	// Plaintext straight to the backend's address is redirected to its
	// sidecar too, which takes only mTLS.
	if out, err := w.call("get", "http://"+w.back.ip.String()+":8080/"); err == nil {
		t.Errorf("plaintext call to the backend host's port succeeded: %q", out)
	}
	// Direct access: echo is a directAccessService of the frontend, so a
	// call to the instance's own address goes into the mesh (mTLS).
	before := tproxyStat(t, w.backDP, "listener.0.0.0.0_15006.ssl.handshake")
	w.expect("echo:direct\n", "tcp", netip.AddrPortFrom(w.back.ip, 9000).String(), "direct")
	if n := tproxyStat(t, w.backDP, "listener.0.0.0.0_15006.ssl.handshake"); n <= before {
		t.Errorf("direct access to echo did not use mTLS: ssl.handshake %d, was %d", n, before)
	}
}

// inboundPassthrough: a port of the backend host that no inbound serves
// is passed through by its sidecar (from 127.0.0.6, which the rules leave
// alone, so the connection is not redirected back to the sidecar).
func (w *tproxyWorld) inboundPassthrough() {
	unmeshed := "http://" + w.back.ip.String() + ":7777/"
	if out, err := tproxyCall(w.t, w.outside, w.app, "get", unmeshed); err != nil || out != "200 unmeshed /\n" {
		w.t.Errorf("inbound passthrough to %s: %q, %v", unmeshed, out, err)
	}
	if n := tproxyStat(w.t, w.backDP, "cluster.inbound:passthrough:ipv4.upstream_cx_total"); n < 1 {
		w.t.Errorf("cluster inbound:passthrough:ipv4 upstream_cx_total = %d, want at least 1", n)
	}
	if w.dualStack {
		unmeshed6 := "http://[" + w.back.ip6.String() + "]:7777/"
		if out, err := tproxyCall(w.t, w.outside, w.app, "get", unmeshed6); err != nil || out != "200 unmeshed /\n" {
			w.t.Errorf("inbound passthrough to %s: %q, %v", unmeshed6, out, err)
		}
	}
}

// permissions: without a traffic permission the calls fail.
func (w *tproxyWorld) permissions() {
	w.cp.mustCtl("", "delete", "meshtrafficpermission", "allow-all", "-m", "default")
	eventually(w.t, 30*time.Second, "calls refused without a traffic permission", func() error {
		if out, err := w.call("get", "http://"+w.backendHost+"/"); err == nil {
			return fmt.Errorf("HTTP call still answered: %q", out)
		}
		if out, err := w.call("tcp", w.echoHost+":9000", "hello"); err == nil {
			return fmt.Errorf("TCP call still answered: %q", out)
		}
		return nil
	})
	w.cp.mustCtl(allowAll, "apply", "-f", "-")
	w.expect("200 backend /\n", "get", "http://"+w.backendHost+"/")
}

// outboundPassthrough: an address outside the mesh is passed through
// while the Mesh allows it and refused when it does not; the mesh itself
// still works.
func (w *tproxyWorld) outboundPassthrough() {
	urls := []string{"http://" + w.outside.ip.String() + ":8080/"}
	if w.dualStack {
		urls = append(urls, "http://["+w.outside.ip6.String()+"]:8080/")
	}
	for _, u := range urls {
		w.expect("200 outside /\n", "get", u)
	}
	w.cp.mustCtl(tproxyMesh(false), "apply", "-f", "-")
	eventually(w.t, 30*time.Second, "passthrough refused with networking.outbound.passthrough false", func() error {
		for _, u := range urls {
			if out, err := w.call("get", u); err == nil {
				return fmt.Errorf("%s still answered: %q", u, out)
			}
		}
		return nil
	})
	w.expect("200 backend /\n", "get", "http://"+w.backendHost+"/")
}

// uninstall: stopping the sidecars and uninstalling leaves each host's
// rules as they were.
func (w *tproxyWorld) uninstall() {
	w.frontDP.Stop()
	w.backDP.Stop()
	for _, h := range []*tproxyHost{w.front, w.back} {
		h.ns.MustExec(w.t, filepath.Join(binDir, "trellisctl"), "uninstall", "transparent-proxy")
		if got := tproxyRules(w.t, h); got != h.rules {
			w.t.Errorf("%s: iptables-save after uninstall differs from before install\nbefore:\n%s\nafter:\n%s", h.name, h.rules, got)
		}
		if got := h.ns.MustExec(w.t, "ip", "addr", "show", "dev", "lo"); got != h.lo {
			w.t.Errorf("%s: lo after uninstall differs from before install\nbefore:\n%s\nafter:\n%s", h.name, h.lo, got)
		}
	}
}

// tproxyMesh is the default mesh with mTLS and the given passthrough.
func tproxyMesh(passthrough bool) string {
	return mtlsMesh("STRICT", "24h") + fmt.Sprintf("networking:\n  outbound:\n    passthrough: %t\n", passthrough)
}

// tproxyDataplane is the Dataplane of a host's sidecar.
func tproxyDataplane(h *tproxyHost, dualStack bool) string {
	inbounds := `  - port: 8080
    tags: {kuma.io/service: frontend, kuma.io/protocol: http}
`
	if h.name == "backend" {
		inbounds = `  - port: 8080
    tags: {kuma.io/service: backend, kuma.io/protocol: http}
  - port: 9000
    tags: {kuma.io/service: echo, kuma.io/protocol: tcp}
`
	}
	return fmt.Sprintf(`type: Dataplane
mesh: default
name: %s-1
networking:
  address: %s
  inbound:
%s  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
    ipFamilyMode: %s
    directAccessServices: [echo]
`, h.name, h.ip, inbounds, map[bool]string{true: "DualStack", false: "IPv4"}[dualStack])
}

func tproxyServices(h *tproxyHost) string {
	if h.name == "backend" {
		return "backend,echo"
	}
	return "frontend"
}

// tproxyWorkDir is a directory the test's unprivileged users can read.
func tproxyWorkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "trellis-tproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tproxyRules returns the host's iptables-save output without its
// comment lines (they carry the time).
func tproxyRules(t *testing.T, h *tproxyHost) string {
	t.Helper()
	var keep []string
	for _, line := range strings.Split(h.ns.MustExec(t, "iptables-save"), "\n") {
		if !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// tproxyRun starts a long-running command on a host as uid; it is killed
// when the test ends.
func tproxyRun(t *testing.T, h *tproxyHost, uid uint32, name string, args ...string) {
	t.Helper()
	log := &syncBuffer{}
	cmd := netns.AsUser(exec.Command(name, args...), uid, uid)
	cmd.Stdout, cmd.Stderr = log, log
	if err := h.ns.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s on %s: %s", filepath.Base(name), h.name, log)
		}
	})
}

// tproxyCall runs the test application on a host as the application's
// user and returns its output; an error carries its standard error.
func tproxyCall(t *testing.T, h *tproxyHost, app string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := netns.AsUser(exec.CommandContext(ctx, app, args...), tproxyAppUID, tproxyAppUID)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := h.ns.Run(cmd); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// tproxyStartDP runs trellis-dp on a host as the sidecar's user and waits
// until it has its configuration.
func tproxyStartDP(t *testing.T, h *tproxyHost, dpServer, caFile, dataplaneFile, tokenFile string) *proxy {
	t.Helper()
	p := &proxy{t: t, name: h.name, admin: netip.AddrPortFrom(h.ip, 9901).String(), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = netns.AsUser(exec.Command(filepath.Join(binDir, "trellis-dp"), "run",
		"--cp-address", "https://"+dpServer,
		"--dataplane-file", dataplaneFile,
		"--dataplane-token-file", tokenFile,
		"--ca-cert-file", caFile,
		"--admin-addr", p.admin,
		"--log-level", "debug",
	), tproxyDPUID, tproxyDPUID)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := h.ns.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("trellis-dp on %s:\n%s", h.name, p.log)
		}
	})
	eventually(t, 30*time.Second, "trellis-dp on "+h.name+" ready", func() error {
		select {
		case <-p.done:
			t.Fatalf("trellis-dp on %s exited: %v\n%s", h.name, p.cmd.ProcessState, p.log)
		default:
		}
		resp, err := http.Get("http://" + p.admin + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/ready: %s", resp.Status)
		}
		return nil
	})
	return p
}

// tproxyVIP returns the address of the frontend redirect listener's
// filter chain for destination port whose terminal filter goes to target
// (an HCM's route name or a tcp_proxy's cluster); empty when none.
func tproxyVIP(dump map[string]any, target string, port int) string {
	return tproxyChainAddr(dump, "outbound:passthrough:ipv4", target, port)
}

// tproxyVIP6 is tproxyVIP for the IPv6 redirect listener.
func tproxyVIP6(dump map[string]any, target string, port int) string {
	return tproxyChainAddr(dump, "outbound:passthrough:ipv6", target, port)
}

func tproxyChainAddr(dump map[string]any, listener, target string, port int) string {
	l := dumpResource(dump, "listener", listener)
	chains, _ := l["filter_chains"].([]any)
	for _, c := range chains {
		if p, _ := dig(c, "filter_chain_match", "destination_port").(float64); int(p) != port {
			continue
		}
		cfg := dig(c, "filters", 0, "typed_config")
		if dig(cfg, "rds", "route_config_name") != target && dig(cfg, "cluster") != target {
			continue
		}
		if a, _ := dig(c, "filter_chain_match", "prefix_ranges", 0, "address_prefix").(string); a != "" {
			return a
		}
	}
	return ""
}

// tproxyStat reads one counter of a sidecar's /stats.
func tproxyStat(t *testing.T, p *proxy, name string) int {
	t.Helper()
	out := adminGet(t, p, "/stats")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
