// Package listener runs trellis-dp's TCP listeners. A Listener owns one
// socket; what it does with an accepted connection (its Config: the TLS
// inspector and the filter chains) is swapped atomically under it, so a
// configuration update that keeps the address keeps the socket and every
// open connection: new connections use the new chains, open ones go on. A
// removed listener stops accepting and drains: its connections may finish
// and are closed after a timeout.
//
// A connection goes through the TLS inspector (when configured) to pick a
// filter chain by transport protocol, then the chain's TLS handshake and
// network RBAC filters, and is then proxied by tcp_proxy or served by the
// HTTP connection manager.
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
)

// httpIdleTimeout closes idle downstream HTTP connections, as Envoy's
// connection manager idle_timeout default (1 h).
const httpIdleTimeout = time.Hour

// handshakeTimeout bounds a downstream TLS handshake.
const handshakeTimeout = 10 * time.Second

// Listener is one bound TCP socket with its current Config.
type Listener struct {
	addr netip.AddrPort
	ln   *net.TCPListener
	log  *slog.Logger

	cfg atomic.Pointer[Config]

	cxTotal      *stats.Counter
	cxActive     *stats.Gauge
	cxDestroy    *stats.Counter
	noChainMatch *stats.Counter

	// HTTP connections are served by one http.Server per listener, created
	// on the first HTTP chain. Each request runs the newest handler of
	// its connection's chain, so open keep-alive connections follow route
	// updates too.
	httpOnce sync.Once
	httpSrv  *http.Server
	httpLn   *connListener

	mu        sync.Mutex
	conns     map[net.Conn]struct{}  // TCP sessions and connections being set up
	httpConns map[net.Conn]*httpConn // handed to the HTTP server
	fastConns map[*fastConn]struct{} // served by the HTTP/1.1 fast path
	draining  atomic.Bool
	wg        sync.WaitGroup // goroutines serving conns
	accepting chan struct{}  // closed when the accept loop ends
}

// Listen binds addr. It is separate from New so that a configuration can
// bind all its new sockets, and give up cleanly if one fails, before
// anything changes.
func Listen(addr netip.AddrPort) (*net.TCPListener, error) {
	// One family per socket, as Envoy without ipv4_compat: Go would make
	// 0.0.0.0 a dual-stack socket and [::] one too, so 0.0.0.0:port and
	// [::]:port (a transparent proxy's redirect listeners) could not both
	// be bound.
	network := "tcp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "tcp6" // IPV6_V6ONLY
	}
	ln, err := net.ListenTCP(network, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// New returns a Listener on a bound socket; Start begins accepting.
// Metrics are named listener.<ip>_<port>.<metric> as in Envoy.
func New(ln *net.TCPListener, reg stats.Registry, log *slog.Logger) *Listener {
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	sc := stats.NewScope(reg, StatScope(addr))
	return &Listener{
		addr:         addr,
		ln:           ln,
		log:          log.With("address", addr.String()),
		cxTotal:      sc.Counter("downstream_cx_total"),
		cxActive:     sc.Gauge("downstream_cx_active"),
		cxDestroy:    sc.Counter("downstream_cx_destroy"),
		noChainMatch: sc.Counter("no_filter_chain_match"),
		conns:        map[net.Conn]struct{}{},
		httpConns:    map[net.Conn]*httpConn{},
		fastConns:    map[*fastConn]struct{}{},
		accepting:    make(chan struct{}),
	}
}

// StatScope is the metric prefix of the listener on addr:
// listener.127.0.0.1_10001.
func StatScope(addr netip.AddrPort) string {
	return "listener." + stats.Sanitize(addr.String())
}

// Addr returns the bound address.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Start installs the first configuration and starts accepting.
func (l *Listener) Start(c *Config) {
	l.SetConfig(c)
	go l.accept()
}

// SetConfig swaps the configuration that new connections get.
func (l *Listener) SetConfig(c *Config) {
	if c.hasHTTP() {
		l.httpOnce.Do(l.startHTTP)
	}
	l.cfg.Store(c)
}

func (l *Listener) accept() {
	defer close(l.accepting)
	var backoff time.Duration
	for {
		conn, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.cxTotal.Inc()
		l.cxActive.Inc()
		cfg := l.cfg.Load()
		if ch := cfg.direct(); ch != nil {
			if !ch.admit() {
				_ = conn.Close()
				l.connClosed()
				continue
			}
			l.dispatch(conn, conn, ch, ProtocolRawBuffer, nil, netip.AddrPort{})
			continue
		}
		l.track(conn)
		l.wg.Go(func() { l.setUp(conn, cfg) })
	}
}

// setUp runs the TLS inspector, picks the chain, completes its TLS
// handshake and its network RBAC filters, then dispatches the connection.
func (l *Listener) setUp(raw *net.TCPConn, cfg *Config) {
	var conn net.Conn = raw
	protocol := ProtocolRawBuffer
	if cfg.InspectTLS {
		tlsConn, c, err := inspect(raw)
		if err != nil {
			l.log.Debug("tls_inspector: connection closed", "error", err)
			l.abort(raw)
			return
		}
		conn = c
		if tlsConn {
			protocol = ProtocolTLS
		}
	}
	dst, redirected := l.destination(raw, cfg)
	sni := ""
	if protocol == ProtocolTLS && cfg.matchesServerNames() {
		sni = readServerName(raw, conn) // sni.go
	}
	ch := cfg.matchName(protocol, dst, sni)
	if ch == nil {
		l.noChainMatch.Inc()
		l.log.Debug("no filter chain matches", "listener", cfg.Name, "transport_protocol", protocol, "destination", dst.String())
		l.abort(raw)
		return
	}
	if !ch.admit() {
		l.log.Debug("connection closed by local rate limit", "listener", cfg.Name)
		l.abort(raw)
		return
	}
	var id *peer.Identity
	if ch.TLS != nil {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		tc, ident, err := ch.TLS.Handshake(ctx, conn)
		cancel()
		if err != nil {
			l.log.Debug("downstream TLS handshake failed", "listener", cfg.Name, "remote", raw.RemoteAddr().String(), "error", err)
			l.abort(raw)
			return
		}
		conn, id = tc, ident
	}
	for _, f := range ch.RBAC {
		if !f.Check(id) {
			l.log.Debug("connection denied by rbac", "listener", cfg.Name, "principal", id.Principal())
			_ = conn.Close()
			l.untrack(raw)
			l.connClosed()
			return
		}
	}
	if ch.HTTP != nil {
		// The HTTP server tracks it from here on.
		l.untrack(raw)
	}
	if redirected && ch.TCP != nil {
		conn = &origDstConn{Conn: conn, dst: dst}
	}
	l.dispatch(raw, conn, ch, protocol, id, dst)
}

// dispatch hands a set-up connection to its chain's terminal filter. raw
// is the TCP connection under conn, dst its (original) destination.
func (l *Listener) dispatch(raw *net.TCPConn, conn net.Conn, ch *Chain, protocol string, id *peer.Identity, dst netip.AddrPort) {
	if ch.TCP != nil {
		l.serveTCP(raw, conn, ch.TCP)
		return
	}
	l.serveHTTP(conn, &httpConn{chain: ch, protocol: protocol, peer: id, dst: dst})
}

func (l *Listener) track(raw *net.TCPConn) {
	l.mu.Lock()
	l.conns[raw] = struct{}{}
	l.mu.Unlock()
}

func (l *Listener) untrack(raw *net.TCPConn) {
	l.mu.Lock()
	delete(l.conns, raw)
	l.mu.Unlock()
}

// abort closes a connection that failed to set up.
func (l *Listener) abort(raw *net.TCPConn) {
	_ = raw.Close()
	l.untrack(raw)
	l.connClosed()
}

// serveTCP runs a tcp_proxy session; raw stays tracked (drain closes it)
// until the session ends.
func (l *Listener) serveTCP(raw *net.TCPConn, conn net.Conn, p *tcpproxy.Proxy) {
	l.track(raw)
	l.wg.Go(func() {
		p.Serve(conn)
		l.untrack(raw)
		l.connClosed()
	})
}

func (l *Listener) connClosed() {
	l.cxActive.Dec()
	l.cxDestroy.Inc()
}

// StopAccepting closes the listening socket now; Drain does the rest.
func (l *Listener) StopAccepting() { _ = l.ln.Close() }

// Drain stops accepting, lets open connections finish for up to timeout
// (HTTP keep-alive connections are closed when idle, HTTP/2 ones get a
// GOAWAY) and then closes what is left. It returns when every connection
// is closed.
func (l *Listener) Drain(timeout time.Duration) {
	_ = l.ln.Close()
	if l.cfg.Load() != nil { // started
		<-l.accepting
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	if l.httpSrv != nil {
		wg.Go(func() {
			if err := l.httpSrv.Shutdown(ctx); err != nil {
				_ = l.httpSrv.Close()
			}
		})
	}
	wg.Go(func() { l.drainConns(ctx) })
	wg.Go(func() { l.drainFast(ctx) })
	wg.Wait()
	l.wg.Wait()
	if l.httpLn != nil {
		// Connections handed over after the server stopped, or never
		// accepted by it.
		_ = l.httpLn.Close()
		for c := range l.httpLn.pending() {
			l.connState(c, http.StateClosed)
			_ = c.Close()
		}
	}
}

// drainConns waits for the TCP sessions (and connections being set up) to
// end, closing them when ctx ends.
func (l *Listener) drainConns(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		n := len(l.conns)
		l.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			l.mu.Lock()
			for c := range l.conns {
				_ = c.Close()
			}
			l.mu.Unlock()
			return
		}
	}
}
