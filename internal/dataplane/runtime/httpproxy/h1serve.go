package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
)

// The fast path serves HTTP/1.1 downstream connections itself, one
// goroutine per connection doing the whole exchange (read the request,
// route it, write it to a pooled upstream HTTP/1.1 connection, read the
// response, write it back) without net/http's per-request goroutines,
// channels, contexts and header maps. It handles the common case:
// origin-form requests with keep-alive or Connection: close, bodies with
// Content-Length or chunked, pipelined requests, routes to HTTP/1.1
// clusters, direct responses, redirects and RBAC denials. On anything else
// (HTTP/1.0, h2c prior knowledge, Expect, absolute targets, invalid
// requests, routes to HTTP/2 clusters, ...) it hands the connection, with
// the bytes it read, to net/http, which serves the rest of it.
//
// Differences from the net/http path: a downstream client that goes away
// while its request is upstream is noticed when the response is written
// (as HAProxy does by default), not at once; a Date header is not added
// to proxied responses; header names keep the case the peer sent.

// Downstream is what the listener lets the fast path know and decide
// about one of its connections.
type Downstream interface {
	// Begin is called when a request head has been read: it returns the
	// handler of the connection's filter chain and whether the connection
	// must close after this request (its chain changed, or the listener
	// drains). ok is false when the listener already closed the idle
	// connection (drain): the request is not served.
	Begin() (h *Handler, closeAfter bool, ok bool)
	// End is called after each response; false means the connection must
	// close now (the listener drains).
	End() bool
	// Fallback hands the connection to net/http. conn replays the bytes
	// already read before reading more from the socket.
	Fallback(conn net.Conn)
}

// InitialHandler is optionally implemented by a Downstream: the handler
// of the connection's filter chain when it was set up, whose connection
// timeouts (idle_timeout, max_connection_duration,
// request_headers_timeout) apply before the first request. Without it,
// they apply from the second request on (each request's handler sets
// them for the next wait).
type InitialHandler interface {
	InitialHandler() *Handler
}

// Buffer sizes of a downstream connection.
const (
	downReadBufSize  = 4 << 10
	downWriteBufSize = 4 << 10
)

// h1Conn is a downstream connection on the fast path.
type h1Conn struct {
	conn net.Conn
	peer *peer.Identity
	br   *bufio.Reader
	bw   *bufio.Writer
	req  h1Request
	resp h1Response
	out  downWriter // what bw writes to

	idleTimeout    time.Duration
	idleDeadline   time.Time // read deadline set for the idle wait; zero: none
	headersTimeout time.Duration
	expires        time.Time // max_connection_duration reached; zero: never
	started        time.Time
	defaultIdle    time.Duration // the listener's idle timeout
	readDeadline   bool          // a request's read deadline may be left on conn
	obs            obsState      // the request served, for access logs and tracing (observe.go)
}

var h1Conns = sync.Pool{New: func() any {
	return &h1Conn{
		br: bufio.NewReaderSize(nil, downReadBufSize),
		bw: bufio.NewWriterSize(nil, downWriteBufSize),
	}
}}

// ServeHTTP1 serves a downstream connection on the fast path until it
// closes or is handed to net/http. idleTimeout closes a connection that
// waits that long for its next request.
func ServeHTTP1(conn net.Conn, id *peer.Identity, d Downstream, idleTimeout time.Duration) {
	c := h1Conns.Get().(*h1Conn)
	c.conn, c.peer, c.idleTimeout, c.defaultIdle = conn, id, idleTimeout, idleTimeout
	c.started = time.Now()
	c.out.conn = conn
	c.br.Reset(conn)
	c.bw.Reset(&c.out)
	if ih, ok := d.(InitialHandler); ok {
		if h := ih.InitialHandler(); h != nil {
			c.applyTimeouts(h)
		}
	}
	handedOver := c.serve(d)
	if !handedOver {
		_ = conn.Close()
	}
	c.release()
}

func (c *h1Conn) release() {
	c.conn, c.peer = nil, nil
	c.out = downWriter{}
	c.br.Reset(nil)
	c.bw.Reset(nil)
	c.idleDeadline, c.expires, c.headersTimeout, c.readDeadline = time.Time{}, time.Time{}, 0, false
	if cap(c.req.head) > 16<<10 || cap(c.resp.head) > 16<<10 {
		return // keep no big buffers in the pool
	}
	c.req.head, c.resp.head = c.req.head[:0], c.resp.head[:0]
	clear(c.req.fields[:cap(c.req.fields)])
	clear(c.resp.fields[:cap(c.resp.fields)])
	h1Conns.Put(c)
}

// serve runs the request loop; it reports whether the connection was
// handed to net/http.
func (c *h1Conn) serve(d Downstream) bool {
	for {
		c.armIdleDeadline()
		if c.headersTimeout > 0 {
			if !c.startHeadersTimeout() {
				return false
			}
		}
		var err error
		c.req.head, err = readHead(c.br, c.req.head[:0], maxRequestHead)
		if err == nil {
			err = c.req.parse()
		}
		switch {
		case errors.Is(err, errNotFast), errors.Is(err, errHeadTooLarge):
			d.Fallback(c.replay())
			return true
		case err != nil:
			if c.headersTimeout > 0 && isTimeout(err) && len(c.req.head) > 0 {
				c.headersTimedOut()
			}
			return false // closed, reset or idle timeout
		}
		h, closeAfter, ok := d.Begin()
		if !ok {
			return false
		}
		c.applyTimeouts(h)
		switch h.serveH1(c, closeAfter) {
		case h1Fallback:
			d.Fallback(c.replay())
			return true
		case h1Close:
			_ = c.bw.Flush()
			return false
		}
		if !d.End() {
			return false
		}
	}
}

// armIdleDeadline bounds the wait for the next request by the idle
// timeout and the connection's max duration. The deadline is moved at
// most every eighth of the idle timeout, at most once a minute (a timer
// update per request would cost more than the precision is worth).
func (c *h1Conn) armIdleDeadline() {
	if c.idleTimeout <= 0 {
		switch {
		case !c.expires.IsZero() && c.idleDeadline.IsZero():
			c.idleDeadline = c.expires
			_ = c.conn.SetReadDeadline(c.idleDeadline)
		case c.expires.IsZero() && c.readDeadline:
			_ = c.conn.SetReadDeadline(time.Time{})
		}
		c.readDeadline = false
		return
	}
	now := time.Now()
	slack := min(time.Minute, c.idleTimeout/8)
	if !c.idleDeadline.IsZero() && c.idleDeadline.Sub(now) > c.idleTimeout-slack {
		return
	}
	c.idleDeadline = now.Add(c.idleTimeout)
	if !c.expires.IsZero() && c.expires.Before(c.idleDeadline) {
		c.idleDeadline = c.expires
	}
	_ = c.conn.SetReadDeadline(c.idleDeadline)
}

// applyTimeouts takes the connection timeouts of the connection manager
// that serves the connection's requests.
func (c *h1Conn) applyTimeouts(h *Handler) {
	t := &h.timeouts
	idle := c.defaultIdle
	if t.connIdleSet {
		idle = t.connIdle
	}
	if idle != c.idleTimeout {
		c.idleTimeout, c.idleDeadline = idle, time.Time{}
	}
	c.headersTimeout = t.requestHeaders
	var expires time.Time
	if t.maxConn > 0 {
		expires = c.started.Add(t.maxConn)
	}
	if !expires.Equal(c.expires) {
		c.expires, c.idleDeadline = expires, time.Time{}
	}
}

// expired reports whether the connection reached its max duration: it
// closes after the current request.
func (c *h1Conn) expired(now time.Time) bool {
	return !c.expires.IsZero() && !now.Before(c.expires)
}

// startHeadersTimeout waits for the first byte of the next request (in
// the idle wait), then bounds the reception of its head by the request
// headers timeout. It returns false when the connection ended.
func (c *h1Conn) startHeadersTimeout() bool {
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return false
		}
	}
	c.setReadDeadline(time.Now().Add(c.headersTimeout))
	return true
}

// headersTimedOut answers a request whose head did not arrive within the
// request headers timeout, as Envoy: 408, and the connection closes.
func (c *h1Conn) headersTimedOut() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	w := c.bw
	writeStatusLine(w, http.StatusRequestTimeout, "")
	writeField(w, "Content-Type", "text/plain")
	writeField(w, "Content-Length", strconv.Itoa(len(bodyRequestHeadersT)))
	w.WriteString("Connection: close\r\n\r\n")
	w.WriteString(bodyRequestHeadersT)
	_ = w.Flush()
}

// setReadDeadline bounds the reading of a request body; the next idle
// wait sets the idle deadline again.
func (c *h1Conn) setReadDeadline(t time.Time) {
	_ = c.conn.SetReadDeadline(t)
	c.idleDeadline = time.Time{}
	c.readDeadline = !t.IsZero()
}

// replay returns the connection for net/http: the head read so far and
// the bytes buffered after it come first.
func (c *h1Conn) replay() net.Conn {
	buffered, _ := c.br.Peek(c.br.Buffered())
	data := make([]byte, 0, len(c.req.head)+len(buffered))
	data = append(append(data, c.req.head...), buffered...)
	if !c.idleDeadline.IsZero() {
		_ = c.conn.SetReadDeadline(time.Time{}) // net/http sets its own
	}
	return &replayConn{Conn: c.conn, r: bytes.NewReader(data)}
}

// replayConn is a connection whose first reads return bytes already read
// from it.
type replayConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.r.Len() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// h1Outcome is what the connection does after a request.
type h1Outcome uint8

const (
	h1Keep     h1Outcome = iota // read the next request
	h1Close                     // flush and close
	h1Fallback                  // hand over to net/http (nothing was written)
)

// serveH1 serves the request in c.req, like ServeHTTP does for net/http.
func (h *Handler) serveH1(c *h1Conn, closeAfter bool) h1Outcome {
	if h.netHTTPOnly {
		return h1Fallback
	}
	start := time.Now()
	req := &c.req
	path, pathOnly := req.target, req.pathOnly()
	var rt *route
	if h.routes != nil {
		rt = h.routes.route(req, path, pathOnly)
	}
	if rt != nil && rt.kind == actionForward && !rt.h1 {
		return h1Fallback
	}
	closeAfter = closeAfter || req.closeConn || c.expired(start)
	if h.obs != nil {
		h.obs.beginH1(c, start)
		defer h.obs.endH1(c)
	}
	s := h.stats
	defer recordSince(s.rqTime, start)
	s.rqTotal.Inc()
	s.rqHTTP1.Inc()
	var v verdict
	if len(h.filters) > 0 {
		if v = h.decode(c.peer); v.status != 0 {
			return h.localReplyH1Headers(c, v.status, v.body, "", v.headers, closeAfter)
		}
	}
	switch {
	case rt == nil:
		if h.routes == nil {
			h.log.Debug("route configuration not received yet", "route_config_name", h.rdsName)
		}
		s.noRoute.Inc()
		return h.localReplyH1(c, http.StatusNotFound, "", "", closeAfter)
	case rt.kind == actionDirect:
		s.rqDirectResponse.Inc()
		return h.localReplyH1(c, rt.status, rt.body, "", closeAfter)
	case rt.kind == actionRedirect:
		s.rqRedirect.Inc()
		return h.localReplyH1(c, rt.redirect.status, "", rt.redirect.location(req, rt.match.value, path, pathOnly), closeAfter)
	}
	if v.delay > 0 {
		time.Sleep(v.delay)
	}
	return h.forwardH1(c, rt, closeAfter, start)
}

// localReplyH1 writes a response generated by the proxy and counts it.
// A request body that was not read is discarded when small, else the
// connection closes.
func (h *Handler) localReplyH1(c *h1Conn, status int, body, location string, closeAfter bool) h1Outcome {
	return h.localReplyH1Headers(c, status, body, location, nil, closeAfter)
}

// localReplyH1Headers is localReplyH1 with more response headers.
func (h *Handler) localReplyH1Headers(c *h1Conn, status int, body, location string, headers []replyHeader, closeAfter bool) h1Outcome {
	req := &c.req
	discard := int64(0)
	switch {
	case req.chunked || req.contentLength > maxDiscard:
		closeAfter = true
	case req.contentLength > 0:
		discard = req.contentLength
	}
	c.obs.local(status, body)
	h.countResponse(status)
	w := c.bw
	writeStatusLine(w, status, "")
	if location != "" {
		writeField(w, "Location", location)
	}
	for _, rh := range headers {
		writeField(w, rh.name, rh.value)
	}
	if body != "" {
		writeField(w, "Content-Type", "text/plain")
	}
	w.WriteString("Content-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(body)), 10))
	w.WriteString("\r\n")
	if closeAfter {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if req.meth != "HEAD" {
		w.WriteString(body)
	}
	if err := w.Flush(); err != nil || closeAfter {
		return h1Close
	}
	if discard > 0 {
		if _, err := c.br.Discard(int(discard)); err != nil {
			return h1Close
		}
	}
	return h1Keep
}

// maxDiscard is the largest unread request body that is read and dropped
// to keep the connection after a local reply (net/http's figure).
const maxDiscard = 256 << 10

func writeStatusLine(w *bufio.Writer, code int, reason string) {
	if text := http.StatusText(code); text != "" {
		reason = text
	}
	w.WriteString("HTTP/1.1 ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(code), 10))
	w.WriteByte(' ')
	w.WriteString(reason)
	w.WriteString("\r\n")
}

func writeField(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(value)
	w.WriteString("\r\n")
}
