package runtime

import (
	"fmt"
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/listener"
)

// Zone proxies (docs/xds-contract.md, "Zone ingress"): a zone ingress's
// listener picks its filter chain by the SNI of the ClientHello
// (filter_chain_match.server_names) and forwards the TLS bytes untouched.

// serverNamesMatch reads filter_chain_match.server_names: exact names or
// "*.suffix" wildcards, none empty.
func serverNamesMatch(ch *listener.Chain, m *listenerv3.FilterChainMatch) error {
	for i, n := range m.GetServerNames() {
		if n == "" || n == "*" || (strings.Contains(n, "*") && (!strings.HasPrefix(n, "*.") || strings.Count(n, "*") > 1)) {
			return fmt.Errorf("server_names[%d]: %q must be a name or a \"*.suffix\" wildcard", i, n)
		}
		ch.ServerNames = append(ch.ServerNames, n)
	}
	return nil
}

// serverNamesKey is a chain's server names in a canonical order.
func serverNamesKey(ch *listener.Chain) string {
	names := slices.Clone(ch.ServerNames)
	slices.Sort(names)
	return strings.Join(names, ",")
}
