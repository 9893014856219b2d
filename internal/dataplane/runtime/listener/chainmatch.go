package listener

import (
	"net"
	"net/netip"

	"github.com/trellis-mesh/trellis/internal/transparentproxy/origdst"
)

// match returns the filter chain of a connection of the given transport
// protocol addressed to dst, as Envoy picks it: the chains whose
// destination_port is dst's port, else those without one; of these, the
// ones with the longest prefix range holding dst's address, else those
// without prefix ranges; of these, the one naming the transport protocol,
// else the one naming none. A criterion never falls back to a less
// specific chain once a more specific one matched (as in Envoy). No chain:
// the default chain (nil when there is none).
func (c *Config) match(protocol string, dst netip.AddrPort) *Chain {
	return c.matchName(protocol, dst, "") // sni.go
}

// matchesDestination reports whether a chain matches on the destination.
func (c *Config) matchesDestination() bool {
	for _, ch := range c.Chains {
		if ch.DestinationPort != 0 || len(ch.PrefixRanges) > 0 {
			return true
		}
	}
	return false
}

func byPort(chains []*Chain, port uint16) []*Chain {
	var exact, any []*Chain
	for _, ch := range chains {
		switch ch.DestinationPort {
		case port:
			exact = append(exact, ch)
		case 0:
			any = append(any, ch)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return any
}

func byPrefix(chains []*Chain, a netip.Addr) []*Chain {
	best := -1
	var longest, any []*Chain
	for _, ch := range chains {
		if len(ch.PrefixRanges) == 0 {
			any = append(any, ch)
			continue
		}
		bits := -1
		for _, p := range ch.PrefixRanges {
			if p.Contains(a) && p.Bits() > bits {
				bits = p.Bits()
			}
		}
		switch {
		case bits < 0:
		case bits > best:
			best, longest = bits, []*Chain{ch}
		case bits == best:
			longest = append(longest, ch)
		}
	}
	if best >= 0 {
		return longest
	}
	return any
}

// destination returns the address a connection is matched by: its original
// destination when the listener runs the original_dst filter and the host
// redirected it (redirected is then true), else its local address.
func (l *Listener) destination(raw *net.TCPConn, cfg *Config) (dst netip.AddrPort, redirected bool) {
	var local netip.AddrPort
	if a, ok := raw.LocalAddr().(*net.TCPAddr); ok {
		local = a.AddrPort()
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	}
	if !cfg.OriginalDst {
		return local, false
	}
	orig, err := origdst.OriginalDst(raw)
	if err != nil || orig == local {
		l.log.Debug("original_dst: no original destination", "listener", cfg.Name, "error", err)
		return local, false
	}
	return orig, true
}

// origDstConn is a redirected downstream connection that knows its
// original destination (cluster.OriginalDstConn), for tcp_proxy to an
// ORIGINAL_DST cluster.
type origDstConn struct {
	net.Conn
	dst netip.AddrPort
}

func (c *origDstConn) OriginalDst() netip.AddrPort { return c.dst }

// CloseWrite half-closes the connection underneath, as tcp_proxy does at
// the end of one direction.
func (c *origDstConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
