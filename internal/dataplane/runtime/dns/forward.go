package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultResolvConf is where the upstream resolvers are read from.
const DefaultResolvConf = "/etc/resolv.conf"

// minAttempt is the least time one resolver is given.
const minAttempt = 500 * time.Millisecond

// errNoResolvers means resolv.conf names no usable nameserver.
var errNoResolvers = errors.New("no nameserver in the resolv.conf")

// upstream forwards queries to the nameservers of a resolv.conf, read
// again whenever the file changes.
type upstream struct {
	path string
	// self are the addresses of this proxy's DNS listeners: never
	// forwarded to (a resolv.conf pointing at the proxy would loop).
	self func(netip.AddrPort) bool

	mu      sync.Mutex
	modTime time.Time
	size    int64
	servers []netip.AddrPort
	readErr error
}

func newUpstream(path string, self func(netip.AddrPort) bool) *upstream {
	if path == "" {
		path = DefaultResolvConf
	}
	return &upstream{path: path, self: self}
}

// resolvers returns the nameservers, re-reading the file when its size or
// modification time changed.
func (u *upstream) resolvers() ([]netip.AddrPort, error) {
	fi, err := os.Stat(u.path)
	if err != nil {
		return nil, fmt.Errorf("reading the resolvers: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if fi.ModTime().Equal(u.modTime) && fi.Size() == u.size && (u.servers != nil || u.readErr != nil) {
		return u.servers, u.readErr
	}
	u.modTime, u.size = fi.ModTime(), fi.Size()
	u.servers, u.readErr = nil, nil
	cc, err := dns.ClientConfigFromFile(u.path)
	if err != nil {
		u.readErr = fmt.Errorf("reading %s: %w", u.path, err)
		return nil, u.readErr
	}
	port, err := netip.ParseAddrPort("0.0.0.0:" + cc.Port)
	if err != nil {
		u.readErr = fmt.Errorf("%s: port %q", u.path, cc.Port)
		return nil, u.readErr
	}
	for _, s := range cc.Servers {
		// An address, or (an extension tests use) an address:port.
		ap, err := netip.ParseAddrPort(s)
		if ip, perr := netip.ParseAddr(s); perr == nil {
			ap, err = netip.AddrPortFrom(ip, port.Port()), nil
		}
		if err != nil || ap.Addr().Zone() != "" {
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if u.self != nil && u.self(ap) {
			continue
		}
		u.servers = append(u.servers, ap)
	}
	if len(u.servers) == 0 {
		u.readErr = fmt.Errorf("%s: %w", u.path, errNoResolvers)
	}
	return u.servers, u.readErr
}

// exchange asks the resolvers in turn, each for its share of timeout (at
// least minAttempt), until one answers.
func (u *upstream) exchange(ctx context.Context, query []byte, tcp bool, timeout time.Duration) ([]byte, error) {
	servers, err := u.resolvers()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	per := max(timeout/time.Duration(len(servers)), minAttempt)
	var lastErr error
	for _, s := range servers {
		if ctx.Err() != nil {
			break
		}
		actx, acancel := context.WithTimeout(ctx, per)
		resp, err := exchangeOne(actx, s, query, tcp)
		acancel()
		if err == nil {
			return resp, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastErr
}

// exchangeOne sends a query to one resolver and returns the reply with
// the query's ID.
func exchangeOne(ctx context.Context, server netip.AddrPort, query []byte, tcp bool) ([]byte, error) {
	if len(query) < headerLen {
		return nil, errors.New("query too short")
	}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if tcp {
		return exchangeTCP(conn, query)
	}
	if _, err := conn.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		// A reply to this query: its ID, the QR bit. Others (late replies,
		// spoofs) are skipped.
		if n >= headerLen && buf[0] == query[0] && buf[1] == query[1] && buf[2]&0x80 != 0 {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

// exchangeTCP sends a length-prefixed query and reads the reply.
func exchangeTCP(conn net.Conn, query []byte) ([]byte, error) {
	if len(query) > dns.MaxMsgSize {
		return nil, errors.New("query too long")
	}
	out := make([]byte, 2+len(query))
	binary.BigEndian.PutUint16(out, uint16(len(query)))
	copy(out[2:], query)
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	for {
		resp, err := readTCPMessage(conn)
		if err != nil {
			return nil, err
		}
		if len(resp) >= headerLen && resp[0] == query[0] && resp[1] == query[1] && resp[2]&0x80 != 0 {
			return resp, nil
		}
	}
}

// readTCPMessage reads one length-prefixed DNS message.
func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n == 0 {
		return nil, errors.New("empty DNS message")
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}
