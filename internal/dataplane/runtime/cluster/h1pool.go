package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Sizes of an upstream HTTP/1.1 connection's buffers: a response head and
// a small body fit in one read, a request head in one write.
const (
	h1ReadBufSize  = 4 << 10
	h1WriteBufSize = 4 << 10
)

// probeAfter is how long a connection may sit idle in the pool before it
// is checked for a close by the upstream (one non-blocking recv) when it
// is taken out: upstreams close idle keep-alive connections after a few
// seconds (Node.js after 5 s), and a request sent on a closed connection
// has to be retried.
const probeAfter = time.Second

// errALPN reports a TLS upstream that negotiated another protocol than the
// cluster speaks.
var errALPN = errors.New("unexpected application protocol")

// H1Conn is one HTTP/1.1 connection to an endpoint of a cluster, taken from
// the cluster's pool with GetH1 for one request/response exchange at a
// time. Bytes go through W (flushed by the caller) and come back through
// R; afterwards the caller returns it with PutH1, or closes it with Close
// when it cannot carry another exchange.
type H1Conn struct {
	net.Conn // TLS over the counted TCP connection, or the counted TCP connection
	R        *bufio.Reader
	W        *bufio.Writer

	tcp       net.Conn // the socket, for liveness probes
	addr      string
	born      time.Time
	idleSince time.Time
	reused    bool
	deadline  bool // a deadline is set on Conn
}

// Reused reports whether the connection carried an exchange before this
// one: a failure before any response byte then may mean that the upstream
// closed it while idle, and the request can go again on a new connection.
func (c *H1Conn) Reused() bool { return c.reused }

// SetExchangeDeadline bounds the reads and writes of the exchange (the
// route timeout); the zero time removes a bound set earlier.
func (c *H1Conn) SetExchangeDeadline(t time.Time) {
	if t.IsZero() {
		if c.deadline {
			_ = c.Conn.SetDeadline(time.Time{})
			c.deadline = false
		}
		return
	}
	_ = c.Conn.SetDeadline(t)
	c.deadline = true
}

// h1Pool holds a cluster's idle HTTP/1.1 connections by endpoint address,
// most recently used last (they are taken from the end, so that a busy
// cluster keeps reusing a warm set and the rest times out).
type h1Pool struct {
	mu      sync.Mutex
	idle    map[string]*idleConns
	closed  bool
	janitor *time.Timer

	// idleTimeout and maxAge are the cluster's idle_timeout and
	// max_connection_duration (0: none), set before first use.
	idleTimeout time.Duration
	maxAge      time.Duration
}

// expired reports whether a pooled connection is past idle_timeout or
// max_connection_duration at now.
func (p *h1Pool) expired(pc *H1Conn, now time.Time) bool {
	return p.idleTimeout > 0 && now.Sub(pc.idleSince) >= p.idleTimeout ||
		p.maxAge > 0 && now.Sub(pc.born) >= p.maxAge
}

// sweepEvery is how often the janitor looks for expired connections (0:
// nothing ever expires).
func (p *h1Pool) sweepEvery() time.Duration {
	switch {
	case p.idleTimeout == 0:
		return p.maxAge
	case p.maxAge == 0:
		return p.idleTimeout
	}
	return min(p.idleTimeout, p.maxAge)
}

// closeOldestIdle closes the connection idle for the longest time, to free
// a slot under max_connections; false when there is none.
func (p *h1Pool) closeOldestIdle() bool {
	p.mu.Lock()
	var oldest *H1Conn
	var from *idleConns
	for _, ic := range p.idle {
		if len(ic.conns) > 0 && (oldest == nil || ic.conns[0].idleSince.Before(oldest.idleSince)) {
			oldest, from = ic.conns[0], ic
		}
	}
	if oldest != nil {
		copy(from.conns, from.conns[1:])
		from.conns[len(from.conns)-1] = nil
		from.conns = from.conns[:len(from.conns)-1]
	}
	p.mu.Unlock()
	if oldest == nil {
		return false
	}
	_ = oldest.Close()
	return true
}

// idleConns are the idle connections to one endpoint; a pointer in the
// map so that taking and returning a connection changes no map entry.
type idleConns struct{ conns []*H1Conn }

// GetH1 returns an idle pooled connection to addr (an endpoint address
// from Pick), or dials one, with the TLS handshake of a TLS cluster,
// within the connect timeout and before deadline (the zero time: none).
// Dial failures are errors as DialTCP's are.
func (c *Cluster) GetH1(addr string, deadline time.Time) (*H1Conn, error) {
	for {
		if pc := c.h1.take(addr); pc != nil {
			return pc, nil
		}
		pc, err := c.dialH1(addr, deadline)
		if !errors.Is(err, errIdleReturned) {
			return pc, err
		}
	}
}

// hasIdle reports whether a connection to addr is idle in the pool.
func (p *h1Pool) hasIdle(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ic := p.idle[addr]
	return ic != nil && len(ic.conns) > 0
}

// take pops the most recently idle, still usable connection to addr.
func (p *h1Pool) take(addr string) *H1Conn {
	for {
		p.mu.Lock()
		ic := p.idle[addr]
		if ic == nil || len(ic.conns) == 0 {
			p.mu.Unlock()
			return nil
		}
		last := len(ic.conns) - 1
		pc := ic.conns[last]
		ic.conns[last] = nil
		ic.conns = ic.conns[:last]
		p.mu.Unlock()
		now := time.Now()
		if !p.expired(pc, now) && (now.Sub(pc.idleSince) < probeAfter || pc.alive()) {
			pc.reused = true
			return pc
		}
		_ = pc.Close()
	}
}

// alive reports whether an idle connection can still carry a request: no
// byte arrived while it was idle (an HTTP/1.1 upstream sends nothing
// unasked; a TLS one may have sent close_notify) and it is not at EOF.
func (c *H1Conn) alive() bool {
	if c.R.Buffered() > 0 {
		return false
	}
	return socketIdle(c.tcp)
}

// PutH1 returns a connection whose exchange completed (request and
// response read to their end) to the pool. A connection of a cluster that
// was retired, or beyond the idle limit per endpoint, is closed.
func (c *Cluster) PutH1(pc *H1Conn) {
	pc.idleSince = time.Now()
	p := &c.h1
	p.mu.Lock()
	ic := p.idle[pc.addr]
	if p.closed || ic != nil && len(ic.conns) >= maxIdleConnsPerHost || p.maxAge > 0 && pc.idleSince.Sub(pc.born) >= p.maxAge {
		p.mu.Unlock()
		_ = pc.Close()
		return
	}
	if ic == nil {
		if p.idle == nil {
			p.idle = map[string]*idleConns{}
		}
		ic = &idleConns{}
		p.idle[pc.addr] = ic
	}
	ic.conns = append(ic.conns, pc)
	if every := p.sweepEvery(); p.janitor == nil && every > 0 {
		p.janitor = time.AfterFunc(every, p.sweep)
	}
	p.mu.Unlock()
	c.connClosed() // an attempt waiting under max_connections may close it
}

// sweep closes the connections past idle_timeout or
// max_connection_duration and runs again while some are left.
func (p *h1Pool) sweep() {
	var expired []*H1Conn
	p.mu.Lock()
	now := time.Now()
	left := 0
	for addr, ic := range p.idle {
		keep := ic.conns[:0]
		for _, pc := range ic.conns {
			if p.expired(pc, now) {
				expired = append(expired, pc)
			} else {
				keep = append(keep, pc)
			}
		}
		clear(ic.conns[len(keep):])
		ic.conns = keep
		if len(keep) == 0 {
			delete(p.idle, addr)
		}
		left += len(keep)
	}
	if left > 0 && !p.closed {
		p.janitor.Reset(p.sweepEvery() / 2)
	} else {
		p.janitor = nil
	}
	p.mu.Unlock()
	for _, pc := range expired {
		_ = pc.Close()
	}
}

// close closes the idle connections and makes PutH1 close the ones still
// in use when they come back.
func (p *h1Pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.janitor != nil {
		p.janitor.Stop()
		p.janitor = nil
	}
	p.mu.Unlock()
	for _, ic := range idle {
		for _, pc := range ic.conns {
			_ = pc.Close()
		}
	}
}

// dialH1 connects to addr for HTTP/1.1 (TLS offering ALPN http/1.1 unless
// the cluster's TLS context names protocols), counting the connection as
// the HTTP transport's are.
func (c *Cluster) dialH1(addr string, deadline time.Time) (*H1Conn, error) {
	if err := c.beginPending(); err != nil {
		return nil, err
	}
	defer c.endPending()
	parent := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		parent, cancel = context.WithDeadline(parent, deadline)
		defer cancel()
	}
	ctx, cancel := c.connectContext(parent)
	defer cancel()
	raw, err := c.dialPooled(ctx, addr, addr)
	if err != nil {
		return nil, err
	}
	counted := &countedConn{Conn: raw, c: c}
	var conn net.Conn = counted
	if c.h1TLS != nil {
		tc, err := c.handshake(ctx, c.h1TLS, counted, addr)
		if err != nil {
			_ = counted.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			_ = tc.Close()
			return nil, fmt.Errorf("cluster %s: %s: %w: ALPN chose %q for an HTTP/1.1 cluster", c.name, addr, errALPN, p)
		}
		conn = tc
	}
	return &H1Conn{
		Conn: conn,
		R:    bufio.NewReaderSize(conn, h1ReadBufSize),
		W:    bufio.NewWriterSize(conn, h1WriteBufSize),
		tcp:  raw,
		addr: addr,
		born: time.Now(),
	}, nil
}
