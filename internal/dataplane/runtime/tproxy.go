package runtime

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/listener"
)

// originalDstName is the listener filter of transparent proxying: a
// redirected connection's original destination (SO_ORIGINAL_DST) picks its
// filter chain, and an ORIGINAL_DST cluster connects there.
const originalDstName = "envoy.filters.listener.original_dst"

// listenerFilterKind checks a listener filter and returns which of the two
// trellis-dp runs it is (tlsInspectorName or originalDstName), by its
// typed_config, or by its name when it has none.
func listenerFilterKind(lf *listenerv3.ListenerFilter) (string, error) {
	tc := lf.GetTypedConfig()
	switch {
	case tc == nil && (lf.GetName() == tlsInspectorName || lf.GetName() == originalDstName):
		return lf.GetName(), nil
	case tc == nil:
		return "", fmt.Errorf("listener filter %q is not supported by trellis-dp", lf.GetName())
	case tc.MessageIs(&tlsinspectorv3.TlsInspector{}):
		return tlsInspectorName, nil
	case tc.MessageIs(&originaldstv3.OriginalDst{}):
		return originalDstName, nil
	default:
		return "", fmt.Errorf("typed_config %s is not a listener filter", tc.GetTypeUrl())
	}
}

// destinationMatch reads filter_chain_match's destination_port and
// prefix_ranges into ch. Errors start with the field name.
func destinationMatch(ch *listener.Chain, m *listenerv3.FilterChainMatch) error {
	if p := m.GetDestinationPort(); p != nil {
		if p.GetValue() == 0 || p.GetValue() > 0xffff {
			return fmt.Errorf("destination_port %d is out of range 1-65535", p.GetValue())
		}
		ch.DestinationPort = uint16(p.GetValue())
	}
	for i, r := range m.GetPrefixRanges() {
		a, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			return fmt.Errorf("prefix_ranges[%d].address_prefix: %w", i, err)
		}
		a = a.Unmap()
		bits := 0 // unset prefix_len is 0, as in Envoy
		if pl := r.GetPrefixLen(); pl != nil {
			if int(pl.GetValue()) > a.BitLen() {
				return fmt.Errorf("prefix_ranges[%d].prefix_len %d is longer than the address (%d bits)", i, pl.GetValue(), a.BitLen())
			}
			bits = int(pl.GetValue())
		}
		ch.PrefixRanges = append(ch.PrefixRanges, netip.PrefixFrom(a, bits).Masked())
	}
	return nil
}

// chainMatchKey identifies what a filter chain matches, to refuse two
// chains that match the same connections.
type chainMatchKey struct {
	port      uint16
	prefixes  string
	transport string
	names     string // server names (zoneproxy.go)
}

func matchKey(ch *listener.Chain) chainMatchKey {
	ps := make([]string, 0, len(ch.PrefixRanges))
	for _, p := range ch.PrefixRanges {
		ps = append(ps, p.String())
	}
	slices.Sort(ps)
	return chainMatchKey{port: ch.DestinationPort, prefixes: strings.Join(ps, ","), transport: ch.TransportProtocol, names: serverNamesKey(ch)}
}

// defaultChain builds a listener's default_filter_chain (nil when it has
// none), which takes what no other chain matches and so has no match.
func (b *chainBuilder) defaultChain(name string, addr netip.AddrPort, fc *listenerv3.FilterChain, lfPrint []byte) (*listener.Chain, error) {
	if fc == nil {
		return nil, nil
	}
	if fc.GetFilterChainMatch() != nil {
		return nil, errors.New("filter_chain_match: the default chain takes the connections no chain matches; it has no match of its own")
	}
	return b.chain(name, addr, fc, lfPrint)
}
