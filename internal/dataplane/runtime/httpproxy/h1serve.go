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

	idleTimeout  time.Duration
	idleDeadline time.Time // read deadline set for the idle wait; zero: none
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
	c.conn, c.peer, c.idleTimeout = conn, id, idleTimeout
	c.br.Reset(conn)
	c.bw.Reset(conn)
	handedOver := c.serve(d)
	if !handedOver {
		_ = conn.Close()
	}
	c.release()
}

func (c *h1Conn) release() {
	c.conn, c.peer = nil, nil
	c.br.Reset(nil)
	c.bw.Reset(nil)
	c.idleDeadline = time.Time{}
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
			return false // closed, reset or idle timeout
		}
		h, closeAfter, ok := d.Begin()
		if !ok {
			return false
		}
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
// timeout. The deadline is moved at most once a minute (a timer update
// per request would cost more than the precision is worth).
func (c *h1Conn) armIdleDeadline() {
	if c.idleTimeout <= 0 {
		return
	}
	now := time.Now()
	if !c.idleDeadline.IsZero() && c.idleDeadline.Sub(now) > c.idleTimeout-time.Minute {
		return
	}
	c.idleDeadline = now.Add(c.idleTimeout)
	_ = c.conn.SetReadDeadline(c.idleDeadline)
}

// setReadDeadline bounds the reading of a request body; the next idle
// wait sets the idle deadline again.
func (c *h1Conn) setReadDeadline(t time.Time) {
	_ = c.conn.SetReadDeadline(t)
	c.idleDeadline = time.Time{}
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
	req := &c.req
	path, pathOnly := req.target, req.pathOnly()
	var rt *route
	if h.routes != nil {
		rt = h.routes.route(req, path, pathOnly)
	}
	if rt != nil && rt.kind == actionForward && !rt.h1 {
		return h1Fallback
	}
	closeAfter = closeAfter || req.closeConn
	s := h.stats
	s.rqTotal.Inc()
	s.rqHTTP1.Inc()
	for _, f := range h.rbac {
		if !f.Check(c.peer) {
			return h.localReplyH1(c, http.StatusForbidden, BodyRBACDenied, "", closeAfter)
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
	return h.forwardH1(c, rt, closeAfter)
}

// localReplyH1 writes a response generated by the proxy and counts it.
// A request body that was not read is discarded when small, else the
// connection closes.
func (h *Handler) localReplyH1(c *h1Conn, status int, body, location string, closeAfter bool) h1Outcome {
	req := &c.req
	discard := int64(0)
	switch {
	case req.chunked || req.contentLength > maxDiscard:
		closeAfter = true
	case req.contentLength > 0:
		discard = req.contentLength
	}
	h.countResponse(status)
	w := c.bw
	writeStatusLine(w, status, "")
	if location != "" {
		writeField(w, "Location", location)
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
