package transparentproxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Chains Install creates in the nat table. Every chain whose name starts
// with ChainPrefix belongs to the transparent proxy: Uninstall removes them
// all, with every jump to them.
const (
	ChainPrefix           = "TRELLIS_"
	ChainInbound          = "TRELLIS_INBOUND"
	ChainInboundRedirect  = "TRELLIS_INBOUND_REDIRECT"
	ChainOutbound         = "TRELLIS_OUTBOUND"
	ChainOutboundRedirect = "TRELLIS_OUTBOUND_REDIRECT"
	ChainDNS              = "TRELLIS_DNS"
	ChainDNSRedirect      = "TRELLIS_DNS_REDIRECT"
	// ChainCreatedNAT is an empty marker chain: Install adds it when the
	// nat table did not exist before, so Uninstall knows to remove the
	// table itself and leave iptables-save output exactly as it was.
	ChainCreatedNAT = "TRELLIS_CREATED_NAT"
)

// Family is an IP family: its iptables binaries and loopback addresses.
type Family struct {
	// Name is "IPv4" or "IPv6".
	Name string
	// Restore and Save are the iptables-restore / iptables-save binaries.
	Restore, Save string
	// Loopback is 127.0.0.1/32 or ::1/128.
	Loopback netip.Prefix
	// InboundPassthroughSource is the source address (127.0.0.6, ::6) a
	// sidecar binds when it connects to the application on a non-loopback
	// address; traffic from it over lo is never redirected (as in Kuma and
	// Istio, whose Envoy sidecars use these addresses).
	InboundPassthroughSource netip.Prefix
}

// IPv4 and IPv6 are the two families.
var (
	IPv4 = Family{Name: "IPv4", Restore: "iptables-restore", Save: "iptables-save",
		Loopback:                 netip.MustParsePrefix("127.0.0.1/32"),
		InboundPassthroughSource: netip.MustParsePrefix("127.0.0.6/32")}
	IPv6 = Family{Name: "IPv6", Restore: "ip6tables-restore", Save: "ip6tables-save",
		Loopback:                 netip.MustParsePrefix("::1/128"),
		InboundPassthroughSource: netip.MustParsePrefix("::6/128")}
)

// is6 reports whether f is IPv6.
func (f Family) is6() bool { return f.Loopback.Addr().Is6() }

// Families returns the families r captures: IPv4, and IPv6 in dual-stack
// mode.
func (r Resolved) Families() []Family {
	if r.IPFamilyMode == IPFamilyIPv4 {
		return []Family{IPv4}
	}
	return []Family{IPv4, IPv6}
}

// Chains returns the chains the rules of r declare, in declaration order.
func (r Resolved) Chains() []string {
	c := []string{ChainInbound, ChainInboundRedirect, ChainOutbound, ChainOutboundRedirect}
	if r.RedirectDNS {
		c = append(c, ChainDNS, ChainDNSRedirect)
	}
	return c
}

// ChainRules returns the rules of r's own chains for family f, in
// iptables-save syntax ("-A CHAIN ..."), without the jumps from the
// built-in chains. The order is fixed, so the output is deterministic.
func (r Resolved) ChainRules(f Family) []string {
	uid := strconv.FormatUint(uint64(r.DPUID), 10)
	var out []string
	add := func(chain, spec string) { out = append(out, "-A "+chain+" "+spec) }

	// Inbound: everything arriving over TCP, except excluded sources and ports.
	for _, p := range prefixesOf(r.ExcludeInboundIPs, f) {
		add(ChainInbound, "-s "+p+" -j RETURN")
	}
	for _, p := range uniqueSorted(r.ExcludeInboundPorts) {
		add(ChainInbound, fmt.Sprintf("-p tcp -m tcp --dport %d -j RETURN", p))
	}
	add(ChainInbound, "-p tcp -j "+ChainInboundRedirect)
	add(ChainInboundRedirect, fmt.Sprintf("-p tcp -j REDIRECT --to-ports %d", r.RedirectPortInbound))

	// Outbound, in order: the sidecar's connections to the application
	// from the passthrough source; the sidecar calling its own host's
	// address over lo (a service calling itself through the mesh) goes to
	// the inbound listener; DNS over TCP; the application talking to its
	// own host over lo stays direct; the sidecar's and excluded uids'
	// traffic, loopback, excluded destinations and ports stay direct;
	// everything else goes to the outbound listener.
	add(ChainOutbound, "-s "+f.InboundPassthroughSource.String()+" -o lo -j RETURN")
	add(ChainOutbound, "! -d "+f.Loopback.String()+" -o lo -m owner --uid-owner "+uid+" -j "+ChainInboundRedirect)
	if r.RedirectDNS {
		add(ChainOutbound, "-p tcp -m tcp --dport 53 -j "+ChainDNS)
	}
	add(ChainOutbound, "-o lo -m owner ! --uid-owner "+uid+" -j RETURN")
	add(ChainOutbound, "-m owner --uid-owner "+uid+" -j RETURN")
	for _, u := range uniqueSorted(r.ExcludeOutboundUIDs) {
		add(ChainOutbound, fmt.Sprintf("-m owner --uid-owner %d -j RETURN", u))
	}
	add(ChainOutbound, "-d "+f.Loopback.String()+" -j RETURN")
	for _, p := range prefixesOf(r.ExcludeOutboundIPs, f) {
		add(ChainOutbound, "-d "+p+" -j RETURN")
	}
	for _, p := range uniqueSorted(r.ExcludeOutboundPorts) {
		add(ChainOutbound, fmt.Sprintf("-p tcp -m tcp --dport %d -j RETURN", p))
	}
	add(ChainOutbound, "-p tcp -j "+ChainOutboundRedirect)
	add(ChainOutboundRedirect, fmt.Sprintf("-p tcp -j REDIRECT --to-ports %d", r.RedirectPortOutbound))

	if r.RedirectDNS {
		// The sidecar (and excluded uids) query the real resolvers.
		add(ChainDNS, "-m owner --uid-owner "+uid+" -j RETURN")
		for _, u := range uniqueSorted(r.ExcludeOutboundUIDs) {
			add(ChainDNS, fmt.Sprintf("-m owner --uid-owner %d -j RETURN", u))
		}
		add(ChainDNS, "-j "+ChainDNSRedirect)
		add(ChainDNSRedirect, fmt.Sprintf("-p udp -j REDIRECT --to-ports %d", r.RedirectPortDNS))
		add(ChainDNSRedirect, fmt.Sprintf("-p tcp -j REDIRECT --to-ports %d", r.RedirectPortDNS))
	}
	return out
}

// Jumps returns the rules that hook r's chains into the built-in chains
// PREROUTING and OUTPUT, in iptables-save syntax.
func (r Resolved) Jumps() []string {
	j := []string{
		"-A PREROUTING -p tcp -j " + ChainInbound,
		"-A OUTPUT -p tcp -j " + ChainOutbound,
	}
	if r.RedirectDNS {
		j = append(j, "-A OUTPUT -p udp -m udp --dport 53 -j "+ChainDNS)
	}
	return j
}

// RestoreInput returns the nat-table rules of r for family f as
// iptables-restore input: what `--dry-run` prints and what Install applies
// to a table that has none of them yet. The same Resolved always gives
// byte-identical output.
func (r Resolved) RestoreInput(f Family) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Trellis transparent proxy, %s: inbound TCP -> :%d, outbound TCP -> :%d",
		f.Name, r.RedirectPortInbound, r.RedirectPortOutbound)
	if r.RedirectDNS {
		fmt.Fprintf(&b, ", DNS -> :%d", r.RedirectPortDNS)
	}
	fmt.Fprintf(&b, "; uid %d is not redirected\n*nat\n", r.DPUID)
	for _, c := range r.Chains() {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	writeLines(&b, r.ChainRules(f))
	writeLines(&b, r.Jumps())
	b.WriteString("COMMIT\n")
	return b.String()
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

// prefixesOf returns the prefixes of family f, masked, in the order given.
func prefixesOf(ps []netip.Prefix, f Family) []string {
	var out []string
	for _, p := range ps {
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), max(bits-96, 0)
		}
		if a.Is6() == f.is6() {
			out = append(out, netip.PrefixFrom(a, bits).Masked().String())
		}
	}
	return out
}
