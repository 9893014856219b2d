package listener

import (
	"net/netip"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/netratelimit"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/rbac"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

// Config is what a listener does with connections: its filter chains and
// whether the TLS inspector looks at the first bytes to choose one.
type Config struct {
	// Name is the Listener resource's name, for logs.
	Name string
	// InspectTLS is set by the envoy.filters.listener.tls_inspector
	// listener filter: a connection's transport protocol is "tls" when it
	// starts with a ClientHello, else "raw_buffer".
	InspectTLS bool
	// Chains are the filter chains in resource order.
	Chains []*Chain
	// OriginalDst is set by the envoy.filters.listener.original_dst
	// listener filter: a redirected connection's original destination
	// (SO_ORIGINAL_DST) stands for its local address when a chain is
	// matched, and tcp_proxy to an ORIGINAL_DST cluster connects there.
	OriginalDst bool
	// Default is default_filter_chain: the chain of connections no chain
	// matches (nil: they are closed).
	Default *Chain
}

// Chain is one filter chain: an optional TLS transport socket, network
// RBAC filters, then exactly one of TCP and HTTP.
type Chain struct {
	// TransportProtocol is filter_chain_match.transport_protocol: "" (any),
	// "tls" or "raw_buffer".
	TransportProtocol string
	// DestinationPort and PrefixRanges are filter_chain_match's
	// destination_port (0: any) and prefix_ranges (empty: any), matched
	// against the connection's local (or original) destination
	// (chainmatch.go).
	DestinationPort uint16
	PrefixRanges    []netip.Prefix
	// ServerNames is filter_chain_match.server_names (empty: any), matched
	// against the ClientHello's SNI (sni.go).
	ServerNames []string
	// Fingerprint identifies the chain's configuration: HTTP connections
	// of a chain whose fingerprint changed finish their current request
	// and close, as Envoy drains the connections of a changed chain.
	Fingerprint string
	// TLS terminates TLS (nil: plaintext).
	TLS *tlsctx.Server
	// RBAC are the network RBAC filters, evaluated once the handshake is
	// done; a denied connection is closed.
	RBAC []*rbac.Filter
	// RateLimit are the network local rate limit filters. As in Envoy,
	// where they act when the connection is created, they take their
	// token as soon as the chain is chosen (before the TLS handshake and
	// RBAC); a connection beyond the rate is closed.
	RateLimit []*netratelimit.Filter
	TCP       *tcpproxy.Proxy
	HTTP      *httpproxy.Handler
}

// matchProtocol returns the chain of chains for a connection of the given
// transport protocol: the first chain that names it, else the first that
// names none; nil when no chain matches.
func matchProtocol(chains []*Chain, protocol string) *Chain {
	var fallback *Chain
	for _, ch := range chains {
		switch ch.TransportProtocol {
		case protocol:
			return ch
		case "":
			if fallback == nil {
				fallback = ch
			}
		}
	}
	return fallback
}

// admit runs the chain's rate limit filters on a new connection.
func (ch *Chain) admit() bool {
	for _, f := range ch.RateLimit {
		if !f.Allow() {
			return false
		}
	}
	return true
}

// direct reports whether connections can be served straight from the
// accept loop: one plaintext chain with nothing to evaluate first.
func (c *Config) direct() *Chain {
	if c.InspectTLS || c.OriginalDst || c.Default != nil || len(c.Chains) != 1 {
		return nil
	}
	ch := c.Chains[0]
	if ch.DestinationPort != 0 || len(ch.PrefixRanges) > 0 {
		return nil
	}
	if ch.TLS != nil || len(ch.RBAC) > 0 || (ch.TransportProtocol != "" && ch.TransportProtocol != ProtocolRawBuffer) {
		return nil
	}
	return ch
}

func (c *Config) hasHTTP() bool {
	for _, ch := range c.Chains {
		if ch.HTTP != nil {
			return true
		}
	}
	return c.Default != nil && c.Default.HTTP != nil
}
