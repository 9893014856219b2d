// Package listener runs trellis-dp's TCP listeners. A Listener owns one
// socket; what it does with an accepted connection (its filter chain) is
// swapped atomically under it, so a configuration update that keeps the
// address keeps the socket and every open connection: new connections use
// the new chain, open ones go on. A removed listener stops accepting and
// drains: its connections may finish and are closed after a timeout.
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

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
)

// Chain is what a listener does with a connection: exactly one of TCP and
// HTTP is set.
type Chain struct {
	// Name is the Listener resource's name, for logs.
	Name string
	TCP  *tcpproxy.Proxy
	HTTP *httpproxy.Handler
}

// httpIdleTimeout closes idle downstream HTTP connections, as Envoy's
// connection manager idle_timeout default (1 h).
const httpIdleTimeout = time.Hour

// Listener is one bound TCP socket with its current Chain.
type Listener struct {
	addr netip.AddrPort
	ln   *net.TCPListener
	log  *slog.Logger

	chain atomic.Pointer[Chain]

	cxTotal   *stats.Counter
	cxActive  *stats.Gauge
	cxDestroy *stats.Counter

	// HTTP connections are served by one http.Server per listener, created
	// on the first HTTP chain. It runs the newest HTTP handler, so open
	// keep-alive connections follow route updates too.
	httpOnce    sync.Once
	httpSrv     *http.Server
	httpLn      *connListener
	httpHandler atomic.Pointer[httpproxy.Handler]

	mu        sync.Mutex
	tcpConns  map[*net.TCPConn]struct{}
	httpConns map[net.Conn]*stats.Gauge // the HCM's downstream_cx_active
	wg        sync.WaitGroup            // TCP sessions
	accepting chan struct{}             // closed when the accept loop ends
}

// Listen binds addr. It is separate from New so that a configuration can
// bind all its new sockets, and give up cleanly if one fails, before
// anything changes.
func Listen(addr netip.AddrPort) (*net.TCPListener, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// New returns a Listener on a bound socket; Start begins accepting.
// Metrics are named listener.<ip>_<port>.<metric> as in Envoy.
func New(ln *net.TCPListener, reg stats.Registry, log *slog.Logger) *Listener {
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	sc := stats.NewScope(reg, "listener."+stats.Sanitize(addr.String()))
	return &Listener{
		addr:      addr,
		ln:        ln,
		log:       log.With("address", addr.String()),
		cxTotal:   sc.Counter("downstream_cx_total"),
		cxActive:  sc.Gauge("downstream_cx_active"),
		cxDestroy: sc.Counter("downstream_cx_destroy"),
		tcpConns:  map[*net.TCPConn]struct{}{},
		httpConns: map[net.Conn]*stats.Gauge{},
		accepting: make(chan struct{}),
	}
}

// Addr returns the bound address.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Start installs the first chain and starts accepting.
func (l *Listener) Start(c *Chain) {
	l.SetChain(c)
	go l.accept()
}

// SetChain swaps the chain that new connections get.
func (l *Listener) SetChain(c *Chain) {
	if c.HTTP != nil {
		l.httpHandler.Store(c.HTTP)
		l.httpOnce.Do(l.startHTTP)
	}
	l.chain.Store(c)
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
		c := l.chain.Load()
		if c.TCP != nil {
			l.serveTCP(conn, c.TCP)
		} else {
			l.serveHTTP(conn, c.HTTP)
		}
	}
}

func (l *Listener) serveTCP(conn *net.TCPConn, p *tcpproxy.Proxy) {
	l.mu.Lock()
	l.tcpConns[conn] = struct{}{}
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		p.Serve(conn)
		l.mu.Lock()
		delete(l.tcpConns, conn)
		l.mu.Unlock()
		l.connClosed()
	}()
}

func (l *Listener) connClosed() {
	l.cxActive.Dec()
	l.cxDestroy.Inc()
}

// Drain stops accepting, lets open connections finish for up to timeout
// (HTTP keep-alive connections are closed when idle, HTTP/2 ones get a
// GOAWAY) and then closes what is left. It returns when every connection
// is closed.
func (l *Listener) Drain(timeout time.Duration) {
	_ = l.ln.Close()
	if l.chain.Load() != nil { // started
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
			// Connections handed over but never accepted by the server.
			for c := range l.httpLn.pending() {
				l.connState(c, http.StateClosed)
				_ = c.Close()
			}
		})
	}
	wg.Go(func() { l.drainTCP(ctx) })
	wg.Wait()
	l.wg.Wait()
}

// drainTCP waits for the TCP sessions to end, closing them when ctx ends.
func (l *Listener) drainTCP(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		n := len(l.tcpConns)
		l.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			l.mu.Lock()
			for c := range l.tcpConns {
				_ = c.Close()
			}
			l.mu.Unlock()
			return
		}
	}
}
