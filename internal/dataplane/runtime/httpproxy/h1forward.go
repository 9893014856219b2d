package httpproxy

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
)

// syncBodyMax is the largest request body the fast path sends before it
// reads the response, in the connection's goroutine: it fits in the socket
// buffers even when the upstream answers without reading it. Larger and
// chunked bodies are sent by a goroutine of their own while the response
// is read, as net/http's transport does.
const syncBodyMax = 64 << 10

// bodyGrace is how long a request body copy may go on after the response
// ended before the exchange gives up on it (and on the connection).
const bodyGrace = time.Second

// bodyState tracks the downstream request body.
type bodyState uint8

const (
	bodyUnread bodyState = iota // still in the downstream connection
	bodyRead                    // read to its end
	bodyBroken                  // partly read: the connection cannot go on
)

// forwardH1 proxies c.req to an endpoint of the route's cluster over a
// pooled HTTP/1.1 connection and streams the response back.
func (h *Handler) forwardH1(c *h1Conn, rt *route, closeAfter bool) h1Outcome {
	cl := rt.pick().cluster
	if cl == nil {
		h.stats.noCluster.Inc()
		return h.localReplyH1(c, http.StatusServiceUnavailable, bodyNoCluster, "", closeAfter)
	}
	addr, err := cl.Pick()
	if err != nil {
		return h.localReplyH1(c, http.StatusServiceUnavailable, bodyNoHealthyUpstream, "", closeAfter)
	}
	cs := cl.Stats()
	cs.RqTotal.Inc()
	var deadline time.Time
	if rt.timeout > 0 {
		deadline = time.Now().Add(rt.timeout)
	}
	ex := exchange{h: h, c: c, cl: cl, cs: cs, deadline: deadline, closeAfter: closeAfter}
	for attempt := 0; ; attempt++ {
		uc, err := cl.GetH1(addr, deadline)
		if err != nil {
			return ex.fail(err)
		}
		out, retry := ex.run(uc, attempt == 0)
		if !retry {
			return out
		}
		h.log.Debug("reused upstream connection closed before answering, sending again", "cluster", cl.Name(), "address", addr)
	}
}

// exchange is one request forwarded on the fast path.
type exchange struct {
	h          *Handler
	c          *h1Conn
	cl         *cluster.Cluster
	cs         *cluster.Stats
	deadline   time.Time
	closeAfter bool
	body       bodyState
}

// run does the exchange on uc. retry is true when uc was a reused
// connection that failed before anything of the response came back and
// the request can be sent again on a new one (uc is closed then).
func (ex *exchange) run(uc *cluster.H1Conn, mayRetry bool) (out h1Outcome, retry bool) {
	c, req := ex.c, &ex.c.req
	uc.SetExchangeDeadline(ex.deadline)
	writeRequestHead(uc.W, req)
	var bodyDone chan copyErr
	writeFailed := false
	switch {
	case !req.hasBody():
		ex.body = bodyRead
		writeFailed = uc.W.Flush() != nil
	case !req.chunked && req.contentLength <= syncBodyMax:
		c.setReadDeadline(ex.deadline)
		ce := copyLength(uc.W, uc.Conn, c.br, req.contentLength)
		if !ce.failed() {
			ce.write = uc.W.Flush()
		}
		if ce.read != nil {
			// The client stopped sending its body: nobody to answer.
			_ = uc.Close()
			return h1Close, false
		}
		ex.body = bodyRead
		writeFailed = ce.write != nil
	default:
		if err := uc.W.Flush(); err != nil {
			_ = uc.Close()
			if mayRetry && uc.Reused() {
				return 0, true
			}
			return ex.fail(err), false
		}
		c.setReadDeadline(ex.deadline)
		bodyDone = make(chan copyErr, 1)
		go func() { bodyDone <- sendBody(uc, c.br, req) }()
	}

	gotBytes, err := readResponse(uc.R, &c.resp)
	if err != nil {
		_ = uc.Close()
		if bodyDone != nil {
			ex.stopBody(bodyDone)
		}
		if mayRetry && uc.Reused() && !gotBytes && !req.hasBody() && !isTimeout(err) && (writeFailed || req.idempotent()) {
			return 0, true
		}
		return ex.fail(err), false
	}
	return ex.respond(uc, bodyDone, writeFailed), false
}

// respond streams the response in c.resp and its body to the client.
func (ex *exchange) respond(uc *cluster.H1Conn, bodyDone chan copyErr, writeFailed bool) h1Outcome {
	c, resp, cs := ex.c, &ex.c.resp, ex.cs
	mode := resp.bodyMode(c.req.meth)
	writeResponseHead(c.bw, resp, mode, ex.closeAfter)
	ex.h.countResponse(resp.code)
	cs.RqCompleted.Inc()
	cs.RqClass[resp.code/100].Inc()

	var ce copyErr
	switch mode {
	case bodyLength:
		ce = copyLength(c.bw, c.conn, uc.R, resp.contentLength)
	case bodyChunked:
		ce = copyChunked(c.bw, c.conn, uc.R)
	case bodyToClose:
		_ = c.bw.Flush() // the head, without waiting for the stream
		ce = copyToClose(c.bw, uc.R)
	}
	if ce.read != nil && isTimeout(ce.read) {
		cs.RqTimeout.Inc()
	}
	reusable := !ce.failed() && !resp.closeConn && mode != bodyToClose && !writeFailed
	if bodyDone != nil {
		// The body copy is usually done (or about to be: the upstream
		// read it all before answering); an upstream that answered
		// before the whole body arrived ends it.
		wait := time.NewTimer(bodyGrace)
		select {
		case bce := <-bodyDone:
			if bce.failed() {
				reusable = false
				ex.body = bodyBroken
			} else {
				ex.body = bodyRead
			}
		case <-wait.C:
			reusable = false
			_ = uc.Close()
			ex.stopBody(bodyDone)
		}
		wait.Stop()
	}
	if reusable {
		ex.cl.PutH1(uc)
	} else {
		_ = uc.Close()
	}
	if ce.failed() || ex.body == bodyBroken {
		return h1Close
	}
	if err := c.bw.Flush(); err != nil || ex.closeAfter {
		return h1Close
	}
	return h1Keep
}

// stopBody ends a body copy still running (its upstream connection is
// closed; its downstream read is cut by a past deadline) and waits for
// it. The downstream connection cannot serve another request then.
func (ex *exchange) stopBody(bodyDone chan copyErr) {
	_ = ex.c.conn.SetReadDeadline(time.Unix(1, 0))
	<-bodyDone
	ex.body = bodyBroken
	ex.closeAfter = true
}

// fail answers a request whose upstream exchange failed before the
// response head, like upstreamError.
func (ex *exchange) fail(err error) h1Outcome {
	h, c := ex.h, ex.c
	if ex.body == bodyBroken {
		ex.closeAfter = true
	}
	if ex.body != bodyUnread {
		// What is left of the request body is gone or already sent.
		c.req.contentLength, c.req.chunked = -1, false
	}
	switch {
	case !ex.deadline.IsZero() && (isTimeout(err) || !time.Now().Before(ex.deadline)):
		ex.cs.RqTimeout.Inc()
		return h.localReplyH1(c, http.StatusGatewayTimeout, bodyTimeout, "", ex.closeAfter)
	case isConnectError(err):
		return h.localReplyH1(c, http.StatusServiceUnavailable, bodyConnectFailure, "", ex.closeAfter)
	default:
		h.log.Debug("upstream request failed", "error", err)
		return h.localReplyH1(c, http.StatusServiceUnavailable, bodyReset, "", ex.closeAfter)
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// sendBody copies a request body (chunked, or a large Content-Length
// body) upstream and flushes.
func sendBody(uc *cluster.H1Conn, src *bufio.Reader, req *h1Request) copyErr {
	var ce copyErr
	if req.chunked {
		ce = copyChunked(uc.W, uc.Conn, src)
	} else {
		ce = copyLength(uc.W, uc.Conn, src, req.contentLength)
		if !ce.failed() {
			ce.write = uc.W.Flush()
		}
	}
	return ce
}

// readResponse reads the final response head, skipping 1xx interim
// responses. gotBytes reports whether any byte of a response came.
func readResponse(br *bufio.Reader, resp *h1Response) (gotBytes bool, err error) {
	for {
		resp.head, err = readHead(br, resp.head[:0], maxResponseHead)
		gotBytes = gotBytes || len(resp.head) > 0
		switch {
		case errors.Is(err, errNotFast), errors.Is(err, errHeadTooLarge):
			return gotBytes, errMalformed
		case err != nil:
			return gotBytes, err
		}
		if err := resp.parse(); err != nil {
			return true, err
		}
		switch {
		case resp.code == http.StatusSwitchingProtocols:
			return true, errMalformed // never asked for
		case resp.code >= 200:
			return true, nil
		}
	}
}

// writeRequestHead writes the upstream request head: the hop-by-hop
// fields go, "TE: trailers" stays, x-forwarded-proto is set when absent,
// x-request-id is generated when absent (as prepareRequestHeader).
func writeRequestHead(w *bufio.Writer, req *h1Request) {
	w.WriteString(req.meth)
	w.WriteByte(' ')
	w.WriteString(req.target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.host)
	w.WriteString("\r\n")
	for i := range req.fields {
		if f := &req.fields[i]; !f.hop {
			writeField(w, f.name, f.value)
		}
	}
	if req.chunked {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if req.teTrailers {
		w.WriteString("TE: trailers\r\n")
	}
	if !req.hasXFP {
		w.WriteString("X-Forwarded-Proto: http\r\n")
	}
	if !req.hasXRID {
		w.WriteString("X-Request-Id: ")
		w.Write(appendRequestID(w.AvailableBuffer()))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// writeResponseHead writes the downstream response head: the upstream's
// fields without the hop-by-hop ones, and the framing of the body as it
// is sent down.
func writeResponseHead(w *bufio.Writer, resp *h1Response, mode bodyMode, closeAfter bool) {
	writeStatusLine(w, resp.code, resp.reason)
	for i := range resp.fields {
		f := &resp.fields[i]
		if !f.hop || mode == bodyChunked && strings.EqualFold(f.name, "Trailer") {
			writeField(w, f.name, f.value)
		}
	}
	switch {
	case mode == bodyLength,
		mode == bodyNone && resp.contentLength >= 0 && resp.code >= 200 && resp.code != http.StatusNoContent:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), resp.contentLength, 10))
		w.WriteString("\r\n")
	case mode == bodyChunked, mode == bodyToClose:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closeAfter {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}
