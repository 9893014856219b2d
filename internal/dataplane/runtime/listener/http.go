package listener

import (
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
)

// startHTTP creates the listener's HTTP server: HTTP/1.1 and HTTP/2 with
// prior knowledge on the same connections (Envoy's codec_type AUTO without
// TLS), fed with the connections the accept loop hands over.
func (l *Listener) startHTTP() {
	l.httpLn = newConnListener(l.ln.Addr())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	l.httpSrv = &http.Server{
		Handler:     handler{l},
		Protocols:   protocols,
		IdleTimeout: httpIdleTimeout,
		ConnState:   l.connState,
		ErrorLog:    slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			// Envoy allows practically unlimited streams per connection;
			// net/http's default of 250 would queue a busy gRPC client.
			MaxConcurrentStreams: 1 << 16,
		},
	}
	go func() { _ = l.httpSrv.Serve(l.httpLn) }()
}

// handler runs the listener's newest HTTP handler.
type handler struct{ l *Listener }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.l.httpHandler.Load().ServeHTTP(w, r)
}

func (l *Listener) serveHTTP(conn *net.TCPConn, h *httpproxy.Handler) {
	total, active := h.Stats()
	total.Inc()
	active.Inc()
	l.mu.Lock()
	l.httpConns[conn] = active
	l.mu.Unlock()
	if !l.httpLn.push(conn) {
		l.connState(conn, http.StateClosed)
		_ = conn.Close()
	}
}

// connState accounts for HTTP connections that end.
func (l *Listener) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	l.mu.Lock()
	active, ok := l.httpConns[c]
	delete(l.httpConns, c)
	l.mu.Unlock()
	if ok {
		active.Dec()
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
