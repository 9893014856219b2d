package listener

import (
	"net/netip"
	"testing"
)

// Chains are picked as Envoy picks them: destination port, then the
// longest prefix range, then the transport protocol, without falling
// back once a more specific criterion matched; else the default chain.
func TestMatchByDestination(t *testing.T) {
	ch := func(name string, port uint16, transport string, prefixes ...string) *Chain {
		c := &Chain{Fingerprint: name, DestinationPort: port, TransportProtocol: transport}
		for _, p := range prefixes {
			c.PrefixRanges = append(c.PrefixRanges, netip.MustParsePrefix(p))
		}
		return c
	}
	cfg := &Config{
		OriginalDst: true,
		Chains: []*Chain{
			ch("vip-80", 80, "", "240.0.0.1/32"),
			ch("vip-8080", 8080, "", "240.0.0.1/32"),
			ch("net-80", 80, "", "240.0.0.0/8"),
			ch("port-9000-tls", 9000, "tls"),
			ch("port-9000-plain", 9000, ""),
			ch("port-7000-tls", 7000, "tls"),
			ch("any-10", 0, "", "10.0.0.0/8"),
		},
		Default: ch("default", 0, ""),
	}
	for _, c := range []struct {
		dst, protocol, want string
	}{
		{"240.0.0.1:80", ProtocolRawBuffer, "vip-80"},
		{"240.0.0.1:8080", ProtocolRawBuffer, "vip-8080"},
		{"240.0.0.2:80", ProtocolRawBuffer, "net-80"},
		{"241.0.0.1:80", ProtocolRawBuffer, "default"},  // port 80 matched; no range holds it
		{"10.0.0.1:9000", ProtocolTLS, "port-9000-tls"}, // the port beats the 10/8 range
		{"10.0.0.1:9000", ProtocolRawBuffer, "port-9000-plain"},
		{"10.0.0.1:7000", ProtocolRawBuffer, "default"}, // port 7000 matched, only for tls
		{"10.0.0.1:1234", ProtocolRawBuffer, "any-10"},
		{"[::ffff:10.1.2.3]:1234", ProtocolRawBuffer, "any-10"},
		{"192.0.2.1:1234", ProtocolRawBuffer, "default"},
	} {
		got := cfg.match(c.protocol, netip.MustParseAddrPort(c.dst))
		if got == nil || got.Fingerprint != c.want {
			t.Errorf("match(%s, %s) = %v, want %s", c.protocol, c.dst, got, c.want)
		}
	}
	cfg.Default = nil
	if got := cfg.match(ProtocolRawBuffer, netip.MustParseAddrPort("192.0.2.1:1")); got != nil {
		t.Errorf("without a default chain: %s, want none", got.Fingerprint)
	}
	if cfg.direct() != nil {
		t.Error("a listener matching by destination served without setting up")
	}
}
