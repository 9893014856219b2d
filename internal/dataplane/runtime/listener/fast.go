package listener

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
)

// States of a connection on the HTTP/1.1 fast path.
const (
	fastIdle   int32 = iota // waiting for a request: drain may close it
	fastActive              // serving a request
	fastClosed              // closed by drain
)

// fastConn is an HTTP connection served by httpproxy.ServeHTTP1; it is
// the httpproxy.Downstream of that connection.
type fastConn struct {
	l          *Listener
	hc         *httpConn
	conn       net.Conn
	state      atomic.Int32
	handedOver bool // to net/http
}

var (
	_ httpproxy.Downstream     = (*fastConn)(nil)
	_ httpproxy.InitialHandler = (*fastConn)(nil)
)

// InitialHandler returns the HTTP handler of the chain the connection was
// set up with: its connection timeouts apply from the first request on.
func (f *fastConn) InitialHandler() *httpproxy.Handler { return f.hc.chain.HTTP }

// serveFast serves an HTTP connection on the fast path, unless TLS chose
// HTTP/2 for it, which net/http serves.
func (l *Listener) serveFast(conn net.Conn, hc *httpConn) {
	if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		l.handOver(conn, hc)
		return
	}
	f := &fastConn{l: l, hc: hc, conn: conn}
	l.mu.Lock()
	l.fastConns[f] = struct{}{}
	l.mu.Unlock()
	l.wg.Go(func() {
		httpproxy.ServeHTTP1(conn, hc.peer, f, httpIdleTimeout)
		if f.handedOver {
			return
		}
		l.mu.Lock()
		delete(l.fastConns, f)
		l.mu.Unlock()
		hc.active.Dec()
		l.connClosed()
	})
}

// handOver gives a connection to the listener's net/http server, which
// accounts for it from then on.
func (l *Listener) handOver(conn net.Conn, hc *httpConn) {
	l.mu.Lock()
	l.httpConns[conn] = hc
	l.mu.Unlock()
	if !l.httpLn.push(conn) {
		l.connState(conn, http.StateClosed)
		_ = conn.Close()
	}
}

// Begin runs, for each request, the newest HTTP handler of the
// connection's filter chain; when that chain changed since the connection
// was set up, the chain it was set up with serves the request and the
// connection closes afterwards (as handler.ServeHTTP does).
func (f *fastConn) Begin() (*httpproxy.Handler, bool, bool) {
	if !f.state.CompareAndSwap(fastIdle, fastActive) {
		return nil, false, false
	}
	draining := f.l.draining.Load()
	if cur := f.l.cfg.Load().match(f.hc.protocol, f.hc.dst); cur != nil && cur.HTTP != nil && cur.Fingerprint == f.hc.chain.Fingerprint {
		return cur.HTTP, draining, true
	}
	return f.hc.chain.HTTP, true, true
}

// End makes the connection idle again, unless the listener drains.
func (f *fastConn) End() bool {
	return !f.l.draining.Load() && f.state.CompareAndSwap(fastActive, fastIdle)
}

// Fallback hands the connection to net/http.
func (f *fastConn) Fallback(conn net.Conn) {
	f.handedOver = true
	f.l.mu.Lock()
	delete(f.l.fastConns, f)
	f.l.mu.Unlock()
	f.l.handOver(conn, f.hc)
}

// drainFast closes the idle fast-path connections as they become idle
// (the busy ones close after their response) until none is left, and
// closes them all when ctx ends.
func (l *Listener) drainFast(ctx context.Context) {
	l.draining.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		n := len(l.fastConns)
		for f := range l.fastConns {
			if f.state.CompareAndSwap(fastIdle, fastClosed) {
				_ = f.conn.Close()
			}
		}
		l.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			l.mu.Lock()
			for f := range l.fastConns {
				_ = f.conn.Close()
			}
			l.mu.Unlock()
			return
		}
	}
}
