package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
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
// pooled HTTP/1.1 connection, with the route's retries, and streams the
// response back. start is when the request head was read.
func (h *Handler) forwardH1(c *h1Conn, rt *route, closeAfter bool, start time.Time) h1Outcome {
	cl := rt.pick().cluster
	if cl == nil {
		h.stats.noCluster.Inc()
		return h.localReplyH1(c, http.StatusServiceUnavailable, bodyNoCluster, "", closeAfter)
	}
	rt.applyRequestH1(&c.req) // rewrites and header edits (rewrite.go)
	ex := exchange{h: h, c: c, rt: rt, cl: cl, cs: cl.Stats(), closeAfter: closeAfter}
	ex.dl = h.requestDeadlines(rt, start, start)
	req := &c.req
	if pol := rt.res.retry; pol != nil && pol.numRetries > 0 && pol.requestAllowed(req, req.target) {
		ex.pol = pol
		switch {
		case !req.hasBody():
		case req.chunked || req.contentLength > retryBodyMax:
			ex.pol = nil // not replayable: streamed
		default:
			if out, ok := ex.bufferBody(); !ok {
				return out
			}
			defer ex.releaseBody()
		}
	}
	return ex.run()
}

// exchange is one request forwarded on the fast path, with its attempts
// (the first try and the retries).
type exchange struct {
	h          *Handler
	c          *h1Conn
	rt         *route
	cl         *cluster.Cluster
	cs         *cluster.Stats
	pol        *retryPolicy // nil: no retries
	dl         deadlines
	at         time.Time    // the current attempt's deadline
	atKind     deadlineKind // which bound at is
	closeAfter bool
	body       bodyState
	buffered   *[]byte // the request body read for retries; nil: streamed
	retries    int
}

// bodyBufs are request body buffers of requests that may be retried.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// bufferBody reads the request body (Content-Length, up to retryBodyMax)
// so that each attempt can send it. ok is false when the client stopped
// sending it (out closes the connection).
func (ex *exchange) bufferBody() (out h1Outcome, ok bool) {
	c, req := ex.c, &ex.c.req
	bp := bodyBufs.Get().(*[]byte)
	n := int(req.contentLength)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	at, _ := ex.dl.overall()
	c.setReadDeadline(at)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		bodyBufs.Put(bp)
		return h1Close, false
	}
	*bp = buf
	ex.buffered = bp
	ex.body = bodyRead
	return 0, true
}

func (ex *exchange) releaseBody() {
	if cap(*ex.buffered) <= 256<<10 {
		*ex.buffered = (*ex.buffered)[:0]
		bodyBufs.Put(ex.buffered)
	}
	ex.buffered = nil
}

// overloaded is the header of a reply to a request a circuit breaker
// refused.
var overloaded = []replyHeader{{name: "X-Envoy-Overloaded", value: "true"}}

// run sends attempts until one gives the response to send down, or a
// local reply answers the request.
func (ex *exchange) run() h1Outcome {
	key, hasKey := requestHashKey(ex.rt, &ex.c.req)
	ar, err := ex.cl.Begin(false)
	if err != nil {
		return ex.reply(http.StatusServiceUnavailable, bodyOverflow, overloaded)
	}
	for {
		addr, err := pickAddr(ex.cl, key, hasKey)
		if err != nil {
			ar.Done("", cluster.Outcome{})
			return ex.reply(http.StatusServiceUnavailable, bodyNoHealthyUpstream, nil)
		}
		ex.c.obs.attempt(ex.cl.Name(), addr)
		out, next := ex.attempt(ar, addr)
		if next == nil {
			return out
		}
		ar = next
	}
}

// reply answers the request locally.
func (ex *exchange) reply(status int, body string, headers []replyHeader) h1Outcome {
	if ex.body == bodyBroken {
		ex.closeAfter = true
	}
	if ex.body != bodyUnread {
		// What is left of the request body is gone or already sent.
		ex.c.req.contentLength, ex.c.req.chunked = -1, false
	}
	return ex.h.localReplyH1Headers(ex.c, status, body, "", headers, ex.closeAfter)
}

// attempt sends the request to addr. When the outcome calls for a retry
// that a circuit breaker admits, it returns the next attempt, after the
// back-off; else the outcome of the request.
func (ex *exchange) attempt(ar *cluster.Request, addr string) (h1Outcome, *cluster.Request) {
	ex.cs.RqTotal.Inc()
	began := time.Now()
	if ex.pol != nil && ex.pol.perTry > 0 {
		ex.dl.perTry = began.Add(ex.pol.perTry)
	}
	if d := ex.cl.MaxStreamDuration(); d > 0 {
		ex.dl.upMax = began.Add(d)
	}
	ex.at, ex.atKind = ex.dl.next(began)
	var hr headResult
	for try := 0; ; try++ {
		uc, err := ex.cl.GetH1(addr, ex.at)
		if err != nil {
			hr = headResult{err: err}
			break
		}
		if hr = ex.send(uc, try == 0); !hr.resend {
			break
		}
		ex.h.log.Debug("reused upstream connection closed before answering, sending again", "cluster", ex.cl.Name(), "address", addr)
	}
	switch {
	case hr.gone:
		ar.Done(addr, cluster.Outcome{Err: hr.err, LocalOrigin: true, Duration: time.Since(began)})
		return h1Close, nil
	case hr.err != nil:
		ar.Done(addr, cluster.Outcome{Err: hr.err, LocalOrigin: true, Duration: time.Since(began)})
		return ex.failed(hr.err)
	}
	resp := &ex.c.resp
	if ex.canRetry() && ex.pol.retriableStatus(resp.code, resp) {
		if next := ex.admit(); next != nil {
			wait := ex.pol.backOff(ex.retries, resp)
			ex.discard(hr)
			ar.Done(addr, cluster.Outcome{Status: resp.code, Duration: time.Since(began)})
			if out, ok := ex.backOff(next, wait); !ok {
				return out, nil
			}
			return 0, next
		}
	} else if ex.retries > 0 {
		ex.h.retryStatsFor(ex.cl.Name()).success.Inc()
	}
	out := ex.respond(hr.uc, hr.bodyDone, hr.writeFailed)
	ar.Done(addr, cluster.Outcome{Status: resp.code, Duration: time.Since(began)})
	return out, nil
}

// failed handles an attempt that ended without a response head: a retry
// when the policy says so, else the local reply.
func (ex *exchange) failed(err error) (h1Outcome, *cluster.Request) {
	if errors.Is(err, cluster.ErrOverflow) {
		// max_pending_requests: no retry, as Envoy.
		return ex.reply(http.StatusServiceUnavailable, bodyOverflow, overloaded), nil
	}
	now := time.Now()
	kind := dlNone
	if isTimeout(err) || !ex.at.IsZero() && !now.Before(ex.at) {
		kind = ex.dl.fired(ex.atKind, now)
	}
	f := failReset
	switch {
	case kind == dlPerTry:
		ex.h.retryStatsFor(ex.cl.Name()).perTryTimeout.Inc()
		f = failPerTryTimeout
	case kind != dlNone:
	case isConnectError(err):
		f = failConnect
	}
	if (kind == dlNone || kind == dlPerTry || kind == dlUpstreamMax) && ex.canRetry() && ex.pol.retriableFailure(f) {
		if next := ex.admit(); next != nil {
			if out, ok := ex.backOff(next, ex.pol.backOff(ex.retries, nil)); !ok {
				return out, nil
			}
			return 0, next
		}
	}
	return ex.fail(kind, f, err), nil
}

// canRetry reports whether another attempt may follow: a policy with
// retries left, and time before the overall deadline.
func (ex *exchange) canRetry() bool {
	if ex.pol == nil || ex.retries >= ex.pol.numRetries || ex.body == bodyBroken {
		return false
	}
	at, _ := ex.dl.overall()
	return at.IsZero() || time.Now().Before(at)
}

// admit admits the next attempt as a retry; nil when a circuit breaker
// refuses it (the last answer stands, as Envoy).
func (ex *exchange) admit() *cluster.Request {
	rs := ex.h.retryStatsFor(ex.cl.Name())
	ar, err := ex.cl.Begin(true)
	if err != nil {
		return nil // counted by Begin
	}
	ex.retries++
	rs.retry.Inc()
	return ar
}

// backOff waits before the admitted retry next. When the overall deadline
// comes first, it answers the request then (ok false).
func (ex *exchange) backOff(next *cluster.Request, wait time.Duration) (out h1Outcome, ok bool) {
	if at, kind := ex.dl.overall(); !at.IsZero() && time.Now().Add(wait).After(at) {
		time.Sleep(time.Until(at))
		next.Done("", cluster.Outcome{})
		return ex.fail(kind, failReset, os.ErrDeadlineExceeded), false
	}
	if wait > 0 {
		time.Sleep(wait)
	}
	return 0, true
}

// discard drops a response that a retry replaces: a small body is read
// away to keep the connection, else it closes.
func (ex *exchange) discard(hr headResult) {
	uc, resp := hr.uc, &ex.c.resp
	if hr.bodyDone != nil {
		_ = uc.Close()
		ex.waitBody(hr.bodyDone)
		return
	}
	reusable := !resp.closeConn && !hr.writeFailed
	switch resp.bodyMode(ex.c.req.meth) {
	case bodyNone:
	case bodyLength:
		if resp.contentLength > retryDiscardMax {
			reusable = false
		} else if _, err := uc.R.Discard(int(resp.contentLength)); err != nil {
			reusable = false
		}
	default:
		reusable = false
	}
	if reusable {
		ex.cl.PutH1(uc)
	} else {
		_ = uc.Close()
	}
}

// headResult is how sending a request and reading its response head went.
type headResult struct {
	uc          *cluster.H1Conn // with the response head in c.resp
	bodyDone    chan copyErr    // the request body copy, when it runs apart
	writeFailed bool
	err         error // no response head (uc is closed)
	resend      bool  // a reused connection failed: send again on a new one
	gone        bool  // the client stopped sending its body: nobody to answer
}

// send writes the request on uc and reads the response head. mayResend
// allows a resend when uc was a reused connection that failed before
// anything of the response came back (uc is closed then).
func (ex *exchange) send(uc *cluster.H1Conn, mayResend bool) headResult {
	c, req := ex.c, &ex.c.req
	uc.SetExchangeDeadline(ex.at)
	writeRequestHead(uc.W, req)
	var bodyDone chan copyErr
	writeFailed := false
	switch {
	case ex.buffered != nil && len(*ex.buffered) <= syncBodyMax:
		_, _ = uc.W.Write(*ex.buffered)
		writeFailed = uc.W.Flush() != nil
	case ex.buffered != nil:
		if err := uc.W.Flush(); err != nil {
			_ = uc.Close()
			return headResult{err: err, resend: mayResend && uc.Reused()}
		}
		done := make(chan copyErr, 1) // not bodyDone: a captured variable would live on the heap
		buf := *ex.buffered
		go func() {
			_, err := uc.W.Write(buf)
			if err == nil {
				err = uc.W.Flush()
			}
			done <- copyErr{write: err}
		}()
		bodyDone = done
	case !req.hasBody():
		ex.body = bodyRead
		writeFailed = uc.W.Flush() != nil
	case !req.chunked && req.contentLength <= syncBodyMax:
		at, _ := ex.dl.overall()
		c.setReadDeadline(at)
		ce := copyLength(uc.W, uc.Conn, c.br, req.contentLength)
		if !ce.failed() {
			ce.write = uc.W.Flush()
		}
		if ce.read != nil {
			// The client stopped sending its body: nobody to answer.
			_ = uc.Close()
			return headResult{err: ce.read, gone: true}
		}
		ex.body = bodyRead
		writeFailed = ce.write != nil
	default:
		if err := uc.W.Flush(); err != nil {
			_ = uc.Close()
			return headResult{err: err, resend: mayResend && uc.Reused()}
		}
		at, _ := ex.dl.overall()
		c.setReadDeadline(at)
		done := make(chan copyErr, 1)
		go func() { done <- sendBody(uc, c.br, req) }()
		bodyDone = done
	}

	gotBytes, err := readResponse(uc.R, &c.resp)
	if err != nil {
		_ = uc.Close()
		if bodyDone != nil {
			ex.waitBody(bodyDone)
		}
		replayable := !req.hasBody() || ex.buffered != nil
		resend := mayResend && uc.Reused() && !gotBytes && replayable && !isTimeout(err) && (writeFailed || req.idempotent())
		return headResult{err: err, resend: resend}
	}
	return headResult{uc: uc, bodyDone: bodyDone, writeFailed: writeFailed}
}

// waitBody ends a request body copy whose upstream connection is closed.
func (ex *exchange) waitBody(bodyDone chan copyErr) {
	if ex.buffered != nil {
		<-bodyDone // from memory: the write fails at once
		return
	}
	ex.stopBody(bodyDone)
}

// respond streams the response in c.resp and its body to the client.
func (ex *exchange) respond(uc *cluster.H1Conn, bodyDone chan copyErr, writeFailed bool) h1Outcome {
	c, resp, cs := ex.c, &ex.c.resp, ex.cs
	mode := resp.bodyMode(c.req.meth)
	ex.rt.applyResponseH1(resp)
	writeResponseHead(c.bw, resp, mode, ex.closeAfter)
	ex.h.countResponse(resp.code)
	cs.RqCompleted.Inc()
	cs.RqClass[resp.code/100].Inc()

	if mode != bodyNone {
		c.out.watch(uc.Conn, &ex.dl)
	}
	var ce copyErr
	switch mode {
	case bodyLength:
		ce = copyLength(c.bw, &c.out, uc.R, resp.contentLength)
	case bodyChunked:
		ce = copyChunked(c.bw, &c.out, uc.R)
	case bodyToClose:
		_ = c.bw.Flush() // the head, without waiting for the stream
		ce = copyToClose(c.bw, uc.R)
	}
	c.out.unwatch()
	if ce.read != nil && isTimeout(ce.read) {
		if k := ex.dl.fired(dlIdle, time.Now()); k == dlRoute || k == dlPerTry {
			cs.RqTimeout.Inc()
		}
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
				if ex.buffered == nil {
					ex.body = bodyBroken
				}
			} else {
				ex.body = bodyRead
			}
		case <-wait.C:
			reusable = false
			_ = uc.Close()
			ex.waitBody(bodyDone)
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

// fail answers a request whose last attempt failed before the response
// head: a timeout of kind k, or err.
func (ex *exchange) fail(k deadlineKind, f attemptFailure, err error) h1Outcome {
	switch {
	case k != dlNone:
		if k == dlRoute || k == dlPerTry {
			ex.cs.RqTimeout.Inc()
		}
		status, body := timeoutReply(k)
		return ex.reply(status, body, nil)
	case f == failConnect:
		return ex.reply(http.StatusServiceUnavailable, bodyConnectFailure, nil)
	default:
		ex.h.log.Debug("upstream request failed", "error", err)
		return ex.reply(http.StatusServiceUnavailable, bodyReset, nil)
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
