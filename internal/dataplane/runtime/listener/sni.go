package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Server names (filter_chain_match.server_names): when a chain of the
// listener names server names, the TLS inspector also reads the SNI of
// the ClientHello, without consuming it, and chains are narrowed by it
// after the destination and before the transport protocol, as Envoy
// does: the chains naming the SNI exactly, else those naming a wildcard
// "*.suffix" that covers it (longest first), else those naming none. The
// zone ingress relies on it to route TLS it does not terminate.

// matchesServerNames reports whether a chain of c matches on server names.
func (c *Config) matchesServerNames() bool {
	for _, ch := range c.Chains {
		if len(ch.ServerNames) > 0 {
			return true
		}
	}
	return false
}

// byServerName narrows chains by a connection's SNI (empty: none sent).
func byServerName(chains []*Chain, sni string) []*Chain {
	var exact, none []*Chain
	var wild []*Chain
	best := 0
	sni = strings.ToLower(sni)
	for _, ch := range chains {
		if len(ch.ServerNames) == 0 {
			none = append(none, ch)
			continue
		}
		if sni == "" {
			continue
		}
		for _, n := range ch.ServerNames {
			n = strings.ToLower(n)
			switch {
			case n == sni:
				exact = append(exact, ch)
			case strings.HasPrefix(n, "*.") && strings.HasSuffix(sni, n[1:]) && len(sni) > len(n)-1:
				switch {
				case len(n) > best:
					best, wild = len(n), []*Chain{ch}
				case len(n) == best:
					wild = append(wild, ch)
				}
			default:
				continue
			}
			break
		}
	}
	switch {
	case len(exact) > 0:
		return exact
	case len(wild) > 0:
		return wild
	}
	return none
}

// matchName is match narrowed by the connection's SNI.
func (c *Config) matchName(protocol string, dst netip.AddrPort, sni string) *Chain {
	set := c.Chains
	if c.matchesDestination() {
		set = byPrefix(byPort(c.Chains, dst.Port()), dst.Addr().Unmap())
	}
	if c.matchesServerNames() {
		set = byServerName(set, sni)
	}
	if ch := matchProtocol(set, protocol); ch != nil {
		return ch
	}
	return c.Default
}

// maxClientHello bounds the bytes read to find the SNI: one TLS record.
const maxClientHello = 5 + maxRecordLen

// serverNameOf returns the SNI of the ClientHello at the start of hello
// (one complete record), or "" when it has none or cannot be parsed.
func serverNameOf(hello []byte) string {
	var name string
	errDone := errors.New("done")
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name = h.ServerName
		return nil, errDone
	}}
	conn := &helloConn{r: bytes.NewReader(hello)}
	_ = tls.Server(conn, cfg).Handshake()
	return name
}

// helloConn feeds a peeked ClientHello to crypto/tls and swallows what it
// writes back (an alert).
type helloConn struct {
	r io.Reader
}

func (c *helloConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *helloConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *helloConn) Close() error                     { return nil }
func (c *helloConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *helloConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }

// readServerName returns the SNI of a TLS connection the inspector
// classified, without consuming its bytes (conn is what inspect
// returned), waiting up to inspectTimeout for the whole first record.
func readServerName(raw *net.TCPConn, conn net.Conn) string {
	if err := raw.SetReadDeadline(time.Now().Add(inspectTimeout)); err != nil {
		return ""
	}
	defer func() { _ = raw.SetReadDeadline(time.Time{}) }()
	hello, err := peekRecord(raw, conn)
	if err != nil {
		return ""
	}
	return serverNameOf(hello)
}
