package listener

import (
	"net/netip"
	"testing"
)

// Chains are narrowed by SNI as Envoy does: exact names first, then the
// longest wildcard, then chains without server names; a connection
// without SNI only gets the latter.
func TestMatchByServerName(t *testing.T) {
	ch := func(name, transport string, names ...string) *Chain {
		return &Chain{Fingerprint: name, TransportProtocol: transport, ServerNames: names}
	}
	cfg := &Config{InspectTLS: true, Chains: []*Chain{
		ch("backend", "tls", "backend{mesh=default}"),
		ch("wild", "tls", "*.example.com"),
		ch("wilder", "tls", "*.api.example.com"),
		ch("any-tls", "tls"),
		ch("plain", ""),
	}}
	dst := netip.MustParseAddrPort("127.0.0.1:10001")
	for _, c := range []struct{ protocol, sni, want string }{
		{ProtocolTLS, "backend{mesh=default}", "backend"},
		{ProtocolTLS, "BACKEND{mesh=default}", "backend"},
		{ProtocolTLS, "x.example.com", "wild"},
		{ProtocolTLS, "x.api.example.com", "wilder"},
		{ProtocolTLS, "example.com", "any-tls"},
		{ProtocolTLS, "", "any-tls"},
		{ProtocolRawBuffer, "", "plain"},
	} {
		got := cfg.matchName(c.protocol, dst, c.sni)
		if got == nil || got.Fingerprint != c.want {
			t.Errorf("matchName(%s, %q) = %v, want %s", c.protocol, c.sni, got, c.want)
		}
	}
	if got := (&Config{Chains: []*Chain{ch("only", "tls", "a")}}).matchName(ProtocolTLS, dst, "b"); got != nil {
		t.Errorf("an unknown SNI matched %s", got.Fingerprint)
	}
}

// serverNameOf reads the SNI of a ClientHello; garbage gives none.
func TestServerNameOf(t *testing.T) {
	if got := serverNameOf([]byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01}); got != "" {
		t.Fatalf("serverNameOf(garbage) = %q", got)
	}
}
