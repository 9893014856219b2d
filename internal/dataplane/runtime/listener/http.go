package listener

import (
	"net/netip"

	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// httpConn is what the listener knows of a connection it handed to its
// HTTP server.
type httpConn struct {
	chain    *Chain         // the chain it was set up with
	protocol string         // its transport protocol, to find its chain in newer configs
	dst      netip.AddrPort // its (original) destination, likewise
	peer     *peer.Identity
	active   *stats.Gauge // the HCM's downstream_cx_active
}

type httpConnKey struct{}

// startHTTP creates the listener's HTTP server: HTTP/1.1 and HTTP/2 with
// prior knowledge on plaintext connections (Envoy's codec_type AUTO), and
// HTTP/1.1 or HTTP/2 by ALPN on TLS connections, fed with the connections
// the listener sets up.
func (l *Listener) startHTTP() {
	l.httpLn = newConnListener(l.ln.Addr())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	l.httpSrv = &http.Server{
		Handler:     handler{l},
		Protocols:   protocols,
		IdleTimeout: httpIdleTimeout,
		ConnState:   l.connState,
		ConnContext: l.connContext,
		ErrorLog:    slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			// Envoy allows practically unlimited streams per connection;
			// net/http's default of 250 would queue a busy gRPC client.
			MaxConcurrentStreams: 1 << 16,
		},
	}
	go func() { _ = l.httpSrv.Serve(l.httpLn) }()
}

// connContext puts the connection's chain and its peer's identity in the
// context of its requests.
func (l *Listener) connContext(ctx context.Context, c net.Conn) context.Context {
	l.mu.Lock()
	hc := l.httpConns[c]
	l.mu.Unlock()
	if hc == nil {
		return ctx
	}
	return peer.NewContext(context.WithValue(ctx, httpConnKey{}, hc), hc.peer)
}

// handler runs, for each request, the newest HTTP handler of the
// request's filter chain. When that chain changed since the connection
// was set up (another TLS context, other RBAC filters, ...), the request
// is served by the chain it was set up with and the connection closes
// afterwards, as Envoy drains the connections of a changed filter chain.
type handler struct{ l *Listener }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hc, _ := r.Context().Value(httpConnKey{}).(*httpConn)
	if hc == nil { // not set up by the listener: cannot happen
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if cur := h.l.cfg.Load().match(hc.protocol, hc.dst); cur != nil && cur.HTTP != nil && cur.Fingerprint == hc.chain.Fingerprint {
		cur.HTTP.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Connection", "close")
	hc.chain.HTTP.ServeHTTP(w, r)
}

// serveHTTP counts a set-up connection for its HTTP connection manager and
// serves it (serveFast).
func (l *Listener) serveHTTP(conn net.Conn, hc *httpConn) {
	total, active := hc.chain.HTTP.Stats()
	total.Inc()
	active.Inc()
	hc.active = active
	l.serveFast(conn, hc)
}

// connState accounts for HTTP connections that end.
func (l *Listener) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	l.mu.Lock()
	hc, ok := l.httpConns[c]
	delete(l.httpConns, c)
	l.mu.Unlock()
	if ok {
		hc.active.Dec()
		l.connClosed()
	}
}

// connListener is a net.Listener whose connections come from the
// listener's accept loop rather than from a socket.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn, 64), done: make(chan struct{})}
}

// push hands a connection to the HTTP server; false once it has stopped.
func (cl *connListener) push(c net.Conn) bool {
	select {
	case <-cl.done:
		return false
	default:
	}
	select {
	case cl.ch <- c:
		return true
	case <-cl.done:
		return false
	}
}

func (cl *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-cl.ch:
		return c, nil
	case <-cl.done:
		return nil, net.ErrClosed
	}
}

func (cl *connListener) Close() error {
	cl.once.Do(func() { close(cl.done) })
	return nil
}

func (cl *connListener) Addr() net.Addr { return cl.addr }

// pending yields the connections still queued after Close.
func (cl *connListener) pending() func(yield func(net.Conn) bool) {
	return func(yield func(net.Conn) bool) {
		for {
			select {
			case c := <-cl.ch:
				if !yield(c) {
					return
				}
			default:
				return
			}
		}
	}
}
