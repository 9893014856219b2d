package runtime_test

import (
	"bufio"
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
)

// TestMTLSSessionResumption: a second connection between the sidecars
// resumes the first one's TLS session, and the server still knows the
// client's identity (RBAC allows it by its SPIFFE ID).
func TestMTLSSessionResumption(t *testing.T) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: echoServer(t, "app:"), mode: strict,
		rules: rbacRules(map[string][]*rbacv3.Principal{"web-only": {principalName(exact(spiffe("web")))}})}
	server := sidecar(t, in.config(t, ca.pem(), ca.issue(t, spiffe("backend"))))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr}
	client := sidecar(t, out.config(t, ca.pem(), ca.issue(t, spiffe("web"))))

	for i := range 3 {
		c := dialEcho(t, out.addr)
		if got := roundTrip(t, c, bufio.NewReader(c), "hello"); got != "app:hello" {
			t.Fatalf("connection %d: echo = %q", i, got)
		}
		c.Close()
	}
	lscope := "listener." + strings.ReplaceAll(in.addr, ":", "_")
	if got := stat(t, client.Stats(), "cluster.backend.ssl.session_reused"); got < 1 {
		t.Errorf("client ssl.session_reused = %d, want at least 1", got)
	}
	if got := stat(t, server.Stats(), lscope+".ssl.session_reused"); got < 1 {
		t.Errorf("server ssl.session_reused = %d, want at least 1", got)
	}
	if got := stat(t, server.Stats(), "inbound_backend.rbac.allowed"); got != 3 {
		t.Errorf("rbac.allowed = %d, want 3", got)
	}
}
