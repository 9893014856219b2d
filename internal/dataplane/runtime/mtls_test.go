package runtime_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
)

func stat(t *testing.T, st map[string]uint64, name string) uint64 {
	t.Helper()
	v, ok := st[name]
	if !ok {
		t.Fatalf("stat %s does not exist", name)
	}
	return v
}

func TestMTLSTCPBetweenSidecars(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: echoServer(t, "app:"), mode: strict}
	server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr}
	client := sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))

	c := dialEcho(t, out.addr)
	r := bufio.NewReader(c)
	if got := roundTrip(t, c, r, "hello"); got != "app:hello" {
		t.Fatalf("echo = %q", got)
	}
	// Half-close travels through TLS (close_notify) both ways.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
	lscope := "listener." + strings.ReplaceAll(in.addr, ":", "_")
	if got := stat(t, server.Stats(), lscope+".ssl.handshake"); got != 1 {
		t.Errorf("server ssl.handshake = %d", got)
	}
	if got := stat(t, client.Stats(), "cluster.backend.ssl.handshake"); got != 1 {
		t.Errorf("client ssl.handshake = %d", got)
	}
}

func TestMTLSHTTPBetweenSidecars(t *testing.T) {
	for _, tc := range []struct {
		name   string
		http2  bool
		client func(testing.TB) *http.Client
	}{
		{"http1.1", false, func(t testing.TB) *http.Client { return h1Client(t) }},
		{"http2", true, func(t testing.TB) *http.Client { return h2cClient(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newCA(t, "ca-1")
			in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
			server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
			out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true, http2: tc.http2}
			client := sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))

			hc := tc.client(t)
			for range 3 {
				resp, body := get(t, hc, "http://"+out.addr+"/x")
				if resp.StatusCode != 200 || body != "app" {
					t.Fatalf("got %d %q", resp.StatusCode, body)
				}
			}
			// Between the sidecars: HTTP/2 over TLS (ALPN h2) for an http2
			// cluster, HTTP/1.1 otherwise; one pooled connection.
			ss := server.Stats()
			wantH2, wantH1 := uint64(0), uint64(3)
			if tc.http2 {
				wantH2, wantH1 = 3, 0
			}
			if got := stat(t, ss, "http.inbound_backend.downstream_rq_http2_total"); got != wantH2 {
				t.Errorf("server downstream_rq_http2_total = %d, want %d", got, wantH2)
			}
			if got := stat(t, ss, "http.inbound_backend.downstream_rq_http1_total"); got != wantH1 {
				t.Errorf("server downstream_rq_http1_total = %d, want %d", got, wantH1)
			}
			if got := stat(t, client.Stats(), "cluster.backend.upstream_cx_total"); got != 1 {
				t.Errorf("client upstream_cx_total = %d, want 1 (pooled)", got)
			}
			if got := stat(t, ss, "listener."+strings.ReplaceAll(in.addr, ":", "_")+".ssl.handshake"); got != 1 {
				t.Errorf("server ssl.handshake = %d", got)
			}
		})
	}
}

func TestMTLSIntermediateInChain(t *testing.T) {
	root := newCA(t, "root")
	inter := root.intermediate(t, "intermediate")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	sidecar(t, in.config(t, root.pem(), inter.issue(t, spiffe("backend"))))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true}
	sidecar(t, out.config(t, root.pem(), inter.issue(t, spiffe("web"))))
	if resp, body := get(t, h1Client(t), "http://"+out.addr+"/"); resp.StatusCode != 200 || body != "app" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestStrictRefusesPlaintext(t *testing.T) {
	ca := newCA(t, "ca-1")
	tcpIn := inbound{service: "db", addr: freeAddr(t), app: echoServer(t, ""), mode: strict}
	httpIn := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	cfg := tcpIn.config(t, ca.pem(), ca.issue(t, spiffe("db")))
	for k, v := range httpIn.config(t, nil, ca.issue(t, spiffe("backend"))).Listeners {
		cfg.Listeners[k] = v
	}
	cfg = withSecrets(cfg, identitySecret("backend", ca.issue(t, spiffe("backend"))))
	rt := sidecar(t, cfg)

	c := dialEcho(t, tcpIn.addr)
	if _, err := io.WriteString(c, "plain text\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err == nil && strings.Contains(string(b), "plain text") {
		t.Fatalf("plaintext client got its echo: %q", b)
	}
	hc := h1Client(t)
	if resp, err := hc.Get("http://" + httpIn.addr + "/"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plaintext HTTP request served by a STRICT listener")
	}
	st := rt.Stats()
	for _, addr := range []string{tcpIn.addr, httpIn.addr} {
		if got := stat(t, st, "listener."+strings.ReplaceAll(addr, ":", "_")+".ssl.connection_error"); got < 1 {
			t.Errorf("%s ssl.connection_error = %d", addr, got)
		}
	}
}

func TestPermissiveAcceptsPlaintextAndMTLS(t *testing.T) {
	ca := newCA(t, "ca-1")
	for _, isHTTP := range []bool{false, true} {
		name := map[bool]string{false: "tcp", true: "http"}[isHTTP]
		t.Run(name, func(t *testing.T) {
			app := echoServer(t, "app:")
			if isHTTP {
				app = idBackend(t, "app")
			}
			in := inbound{service: "backend", addr: freeAddr(t), app: app, http: isHTTP, mode: permissive}
			server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
			out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: isHTTP, http2: isHTTP}
			sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))

			if isHTTP {
				for _, c := range []*struct {
					name string
					hc   *http.Client
					addr string
				}{{"plaintext h1", h1Client(t), in.addr}, {"plaintext h2c", h2cClient(t), in.addr}, {"mTLS via sidecar", h1Client(t), out.addr}} {
					if resp, body := get(t, c.hc, "http://"+c.addr+"/"); resp.StatusCode != 200 || body != "app" {
						t.Errorf("%s: got %d %q", c.name, resp.StatusCode, body)
					}
				}
			} else {
				for _, addr := range []string{in.addr, out.addr} {
					c := dialEcho(t, addr)
					if got := roundTrip(t, c, bufio.NewReader(c), "x"); got != "app:x" {
						t.Errorf("via %s: echo = %q", addr, got)
					}
				}
			}
			if got := stat(t, server.Stats(), "listener."+strings.ReplaceAll(in.addr, ":", "_")+".ssl.handshake"); got != 1 {
				t.Errorf("ssl.handshake = %d, want 1 (only the sidecar's connection is TLS)", got)
			}
		})
	}
}

func TestOutboundRefusesWrongSAN(t *testing.T) {
	ca := newCA(t, "ca-1")
	// The server sidecar of "backend" presents the identity of "other".
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("other"))))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true}
	client := sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))

	resp, body := get(t, h1Client(t), "http://"+out.addr+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "connection failure") {
		t.Fatalf("got %d %q, want 503 connection failure", resp.StatusCode, body)
	}
	if got := stat(t, client.Stats(), "cluster.backend.ssl.fail_verify_san"); got < 1 {
		t.Errorf("fail_verify_san = %d", got)
	}
	if got := stat(t, client.Stats(), "cluster.backend.upstream_cx_connect_fail"); got < 1 {
		t.Errorf("upstream_cx_connect_fail = %d", got)
	}
}

func TestUntrustedPeerRefused(t *testing.T) {
	trusted, rogue := newCA(t, "ca-1"), newCA(t, "rogue")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	server := sidecar(t, in.config(t, trusted.pem(), trusted.issue(t, spiffe("backend"))))
	if _, err := probeTLS(t, in.addr, rogue.issue(t, spiffe("web"))); err == nil {
		t.Fatal("a client certificate of an untrusted CA was accepted")
	}
	if got := stat(t, server.Stats(), "listener."+strings.ReplaceAll(in.addr, ":", "_")+".ssl.fail_verify_error"); got != 1 {
		t.Errorf("fail_verify_error = %d", got)
	}
	// A client outside the mesh (SAN prefix) is refused as well.
	if _, err := probeTLS(t, in.addr, trusted.issue(t, "spiffe://other-mesh/web")); err == nil {
		t.Fatal("a client of another mesh was accepted")
	}
	if _, err := probeTLS(t, in.addr, trusted.issue(t, spiffe("web"))); err != nil {
		t.Fatalf("a mesh client was refused: %v", err)
	}
}

func TestMissingSecretFailsHandshakesUntilItArrives(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	cfg := in.config(t, ca.pem(), nil) // identity:backend not sent yet
	rt := sidecar(t, cfg)
	client := ca.issue(t, spiffe("web"))
	if _, err := probeTLS(t, in.addr, client); err == nil {
		t.Fatal("handshake succeeded without a certificate")
	}
	if got := stat(t, rt.Stats(), "listener."+strings.ReplaceAll(in.addr, ":", "_")+".ssl.fail_no_secret"); got != 1 {
		t.Errorf("fail_no_secret = %d", got)
	}
	id := ca.issue(t, spiffe("backend"))
	apply(t, rt, withSecrets(cfg, identitySecret("backend", id)))
	serial, err := probeTLS(t, in.addr, client)
	if err != nil || serial.Cmp(id.serial) != 0 {
		t.Fatalf("after the secret arrived: serial %v, %v", serial, err)
	}
}

func TestRBACTCP(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: echoServer(t, "app:"), mode: strict,
		rules: rbacRules(map[string][]*rbacv3.Principal{"allow-web": {principalName(exact(spiffe("web")))}}),
		// Shadow: only "nobody" would be allowed.
		shadow: rbacRules(map[string][]*rbacv3.Principal{"future": {principalName(exact(spiffe("nobody")))}}),
	}
	server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	web := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr}
	sidecar(t, web.config(t, ca.pem(), ca.issue(t, spiffe("web"))))
	intruder := outbound{self: "intruder", dest: "backend", addr: freeAddr(t), upstream: in.addr}
	sidecar(t, intruder.config(t, ca.pem(), ca.issue(t, spiffe("intruder"))))

	c := dialEcho(t, web.addr)
	if got := roundTrip(t, c, bufio.NewReader(c), "hi"); got != "app:hi" {
		t.Fatalf("allowed peer: echo = %q", got)
	}
	d := dialEcho(t, intruder.addr)
	_, _ = io.WriteString(d, "hi\n")
	if b, err := io.ReadAll(d); err == nil && len(b) > 0 {
		t.Fatalf("denied peer got %q", b)
	}
	st := server.Stats()
	for name, want := range map[string]uint64{
		"inbound_backend.rbac.allowed":            1,
		"inbound_backend.rbac.denied":             1,
		"inbound_backend.rbac.shadow_denied":      2,
		"inbound_backend.rbac.shadow_allowed":     0,
		"tcp.inbound_backend.downstream_cx_total": 1,
	} {
		if got := stat(t, st, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestRBACHTTP(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: permissive,
		rules: rbacRules(map[string][]*rbacv3.Principal{
			"allow-web": {principalName(exact(spiffe("web")))},
			"allow-ops": {{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: []*rbacv3.Principal{
				principalName(prefix(spiffe("ops-"))),
				{Identifier: &rbacv3.Principal_NotId{NotId: principalName(exact(spiffe("ops-banned")))}},
			}}}}},
		}),
		shadow: rbacRules(map[string][]*rbacv3.Principal{"any": {anyPrincipal()}}),
	}
	server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	clientOf := func(service string) string {
		o := outbound{self: service, dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true}
		sidecar(t, o.config(t, ca.pem(), ca.issue(t, spiffe(service))))
		return o.addr
	}
	for _, tc := range []struct {
		name string
		addr string
		want int
	}{
		{"web", clientOf("web"), 200},
		{"ops-1", clientOf("ops-1"), 200},
		{"ops-banned", clientOf("ops-banned"), 403},
		{"intruder", clientOf("intruder"), 403},
		// PERMISSIVE: a plaintext peer has no principal.
		{"plaintext", in.addr, 403},
	} {
		resp, body := get(t, h1Client(t), "http://"+tc.addr+"/")
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 403 && body != "RBAC: access denied by MeshTrafficPermission" {
			t.Errorf("%s: body %q", tc.name, body)
		}
	}
	st := server.Stats()
	for name, want := range map[string]uint64{
		"http.inbound_backend.rbac.allowed":        2,
		"http.inbound_backend.rbac.denied":         3,
		"http.inbound_backend.rbac.shadow_allowed": 5,
		"http.inbound_backend.rbac.shadow_denied":  0,
		"http.inbound_backend.downstream_rq_4xx":   3,
	} {
		if got := stat(t, st, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestRBACShadowOnlyNeverEnforces(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict,
		shadow: rbacRules(nil), // no policy: everything would be denied
	}
	server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true}
	sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))
	if resp, _ := get(t, h1Client(t), "http://"+out.addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("status %d: shadow rules were enforced", resp.StatusCode)
	}
	if got := stat(t, server.Stats(), "http.inbound_backend.rbac.shadow_denied"); got != 1 {
		t.Errorf("shadow_denied = %d", got)
	}
}

func TestRBACNoPolicyDeniesEverything(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: echoServer(t, ""), mode: strict, rules: rbacRules(nil)}
	sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	// The handshake completes, then the connection is closed.
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.issue(t, spiffe("web")).tls}}} //nolint:gosec // test
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", in.addr)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "x")
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read = %v, want the connection closed", err)
	}
}

// Switching PERMISSIVE to STRICT: a plaintext keep-alive connection gets
// its next response from the chain it was set up with, told to close, and
// then plaintext is refused.
func TestPermissiveToStrictClosesPlaintextConnections(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: permissive}
	id := ca.issue(t, spiffe("backend"))
	rt := sidecar(t, in.config(t, ca.pem(), id))
	hc := h1Client(t)
	if resp, _ := get(t, hc, "http://"+in.addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("plaintext in PERMISSIVE: %d", resp.StatusCode)
	}
	in.mode = strict
	apply(t, rt, in.config(t, ca.pem(), id))
	resp, _ := get(t, hc, "http://"+in.addr+"/")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("open plaintext connection after the switch: %d, close=%v; want 200 and Connection: close", resp.StatusCode, resp.Close)
	}
	if resp, err := hc.Get("http://" + in.addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("a new plaintext connection was served in STRICT: %d", resp.StatusCode)
	}
}
