package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
)

// netExchange is one request forwarded on the net/http path, with its
// attempts (the first try and the retries).
type netExchange struct {
	h         *Handler
	w         http.ResponseWriter
	r         *http.Request
	rt        *route
	c         *cluster.Cluster
	cs        *cluster.Stats
	pol       *retryPolicy // nil: no retries
	body      *replayBody  // the request body, recorded for retries
	dl        deadlines
	limitKbps uint64
	retries   int
}

// run sends attempts until one gives the response to send down, or a
// local reply answers the request.
func (ex *netExchange) run() {
	key, hasKey := requestHashKey(ex.rt, netRequest{ex.r})
	ar, err := ex.c.Begin(false)
	if err != nil {
		ex.h.overflowReply(ex.w)
		return
	}
	for {
		addr, err := pickAddr(ex.c, key, hasKey)
		if err != nil {
			ar.Done("", cluster.Outcome{})
			ex.h.localReply(ex.w, http.StatusServiceUnavailable, bodyNoHealthyUpstream)
			return
		}
		noteUpstream(ex.w, ex.c.Name(), addr)
		next, retry := ex.attempt(ar, addr)
		if !retry {
			return
		}
		ar = next
	}
}

// attempt sends the request to addr. When the outcome calls for a retry
// that a circuit breaker admits, it returns the admitted next attempt
// after the back-off.
func (ex *netExchange) attempt(ar *cluster.Request, addr string) (*cluster.Request, bool) {
	h, r, cs := ex.h, ex.r, ex.cs
	cs.RqTotal.Inc()
	began := time.Now()
	if ex.pol != nil && ex.pol.perTry > 0 {
		ex.dl.perTry = began.Add(ex.pol.perTry)
	}
	if d := ex.c.MaxStreamDuration(); d > 0 {
		ex.dl.upMax = began.Add(d)
	}
	ctx, wd := startWatchdog(r.Context(), ex.dl)
	defer wd.stop()
	out := upstreamRequest(ctx, r, ex.c.Scheme(), addr)
	if ex.body != nil {
		out.Body = ex.body.reader()
		out.GetBody = nil
	}
	if out.Body != nil && ex.dl.idle > 0 {
		out.Body = activeBody{out.Body, wd} // the request body is activity too
	}
	resp, err := ex.c.Transport().RoundTrip(out)
	if err != nil {
		ar.Done(addr, cluster.Outcome{Err: err, LocalOrigin: true, Duration: time.Since(began)})
		if r.Context().Err() != nil {
			return nil, false // the downstream went away; nobody to answer
		}
		if errors.Is(err, cluster.ErrOverflow) {
			ex.h.overflowReply(ex.w) // max_pending_requests: no retry, as Envoy
			return nil, false
		}
		kind := wd.fired()
		fail := failReset
		switch {
		case kind == dlPerTry:
			h.retryStatsFor(ex.c.Name()).perTryTimeout.Inc()
			fail = failPerTryTimeout
		case kind != dlNone:
		case isConnectError(err):
			fail = failConnect
		case strings.Contains(err.Error(), "REFUSED_STREAM"):
			fail = failRefusedStream
		}
		if (kind == dlNone || kind == dlPerTry || kind == dlUpstreamMax) && ex.canRetry() && ex.pol.retriableFailure(fail) {
			switch next, st := ex.next(nil); st {
			case retryNow:
				return next, true
			case retryAnswered:
				return nil, false
			}
		}
		ex.fail(kind, fail, err)
		return nil, false
	}
	if ex.canRetry() && ex.pol.retriableStatus(resp.StatusCode, netHeader(resp.Header)) {
		wait := ex.pol.backOff(ex.retries+1, netHeader(resp.Header))
		next, st := ex.admit()
		if st == retryNow {
			drain(resp.Body)
			ar.Done(addr, cluster.Outcome{Status: resp.StatusCode, Duration: time.Since(began)})
			if st = ex.backOff(next, wait); st == retryNow {
				return next, true
			}
			return nil, false // answered by the overall deadline, or the client left
		}
	} else if ex.retries > 0 {
		h.retryStatsFor(ex.c.Name()).success.Inc()
	}
	ex.respond(resp, wd)
	ar.Done(addr, cluster.Outcome{Status: resp.StatusCode, Duration: time.Since(began)})
	return nil, false
}

// canRetry reports whether another attempt may follow: retries left, a
// replayable body, and time before the overall deadline.
func (ex *netExchange) canRetry() bool {
	if ex.pol == nil || ex.retries >= ex.pol.numRetries {
		return false
	}
	if ex.body != nil && !ex.body.replayable() {
		return false
	}
	at, _ := ex.dl.overall()
	return at.IsZero() || time.Now().Before(at)
}

// retryState is what became of a retry the policy asked for.
type retryState uint8

const (
	retryNow      retryState = iota // admitted, back-off waited: send it
	retryRefused                    // a circuit breaker refused it: the last answer stands
	retryAnswered                   // the request was answered (or its client left) meanwhile
)

// next admits the next attempt as a retry and waits its back-off (h: the
// response headers that may carry a rate-limit reset).
func (ex *netExchange) next(h request) (*cluster.Request, retryState) {
	wait := ex.pol.backOff(ex.retries+1, h)
	ar, st := ex.admit()
	if st != retryNow {
		return nil, st
	}
	return ar, ex.backOff(ar, wait)
}

// admit admits the next attempt as a retry.
func (ex *netExchange) admit() (*cluster.Request, retryState) {
	ar, err := ex.c.Begin(true)
	if err != nil {
		return nil, retryRefused // counted by Begin
	}
	ex.retries++
	ex.h.retryStatsFor(ex.c.Name()).retry.Inc()
	return ar, retryNow
}

// backOff waits before the admitted retry ar. When the overall deadline
// comes first, it answers the request then.
func (ex *netExchange) backOff(ar *cluster.Request, wait time.Duration) retryState {
	if at, kind := ex.dl.overall(); !at.IsZero() && time.Now().Add(wait).After(at) {
		sleepCtx(ex.r.Context(), time.Until(at))
		ar.Done("", cluster.Outcome{})
		if ex.r.Context().Err() == nil {
			ex.fail(kind, failReset, context.DeadlineExceeded)
		}
		return retryAnswered
	}
	if wait > 0 && !sleepCtx(ex.r.Context(), wait) {
		ar.Done("", cluster.Outcome{})
		return retryAnswered
	}
	return retryNow
}

// fail answers a request whose last attempt failed before the response
// head: a timeout of kind k, or err.
func (ex *netExchange) fail(k deadlineKind, f attemptFailure, err error) {
	h := ex.h
	switch {
	case k != dlNone:
		if k == dlRoute || k == dlPerTry {
			ex.cs.RqTimeout.Inc()
		}
		status, body := timeoutReply(k)
		h.localReply(ex.w, status, body)
	case f == failConnect:
		h.localReply(ex.w, http.StatusServiceUnavailable, bodyConnectFailure)
	default:
		h.log.Debug("upstream request failed", "error", err)
		h.localReply(ex.w, http.StatusServiceUnavailable, bodyReset)
	}
}

// respond streams resp down.
func (ex *netExchange) respond(resp *http.Response, wd *watchdog) {
	defer resp.Body.Close()
	w, cs := ex.w, ex.cs
	prepareResponseHeader(resp.Header)
	ex.rt.applyResponse(ex.r, resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	if _, ok := resp.Header["Content-Type"]; !ok {
		dst["Content-Type"] = nil // no content sniffing by net/http
	}
	if announced := len(resp.Trailer); announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = keys
	}
	w.WriteHeader(resp.StatusCode)
	ex.h.countResponse(resp.StatusCode)
	cs.RqCompleted.Inc()
	if c := resp.StatusCode / 100; c >= 1 && c <= 5 {
		cs.RqClass[c].Inc()
	}
	// Stream without delay when the length is unknown (chunked, gRPC,
	// server-sent events): the client must see what the upstream sent.
	streaming := resp.ContentLength == -1
	if streaming {
		flush(w)
	}
	if err := copyBody(w, resp.Body, streaming, wd, ex.limitKbps); err != nil {
		if k := wd.fired(); (k == dlRoute || k == dlPerTry) && ex.r.Context().Err() == nil {
			cs.RqTimeout.Inc()
		}
		// Reset the downstream stream/connection: the response is cut.
		panic(http.ErrAbortHandler)
	}
	declared := dst["Trailer"]
	for k, vv := range resp.Trailer {
		if slices.Contains(declared, k) {
			dst[k] = vv
		} else {
			dst[http.TrailerPrefix+k] = vv
		}
	}
}

// drain reads a little of a response that is not sent down, so that its
// connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, retryDiscardMax)
	_ = body.Close()
}

// netHeader reads response headers for retry decisions.
type netHeader http.Header

func (n netHeader) authority() string { return "" }
func (n netHeader) method() string    { return "" }
func (n netHeader) header(name string) (string, bool) {
	vv := n[name]
	switch len(vv) {
	case 0:
		return "", false
	case 1:
		return vv[0], true
	}
	return strings.Join(vv, ","), true
}

// replayBody records a request body as the first attempt reads it, so
// that a retry can send it again: bodies up to retryBodyMax that were
// read to their end are replayable.
type replayBody struct {
	src  io.ReadCloser
	size int64 // the Content-Length, -1: unknown

	mu       sync.Mutex
	buf      []byte
	eof      bool
	overflow bool
	err      error
}

// reader returns the body for an attempt: the original for the first
// one, the recording for the next ones.
func (b *replayBody) reader() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof && !b.overflow && b.buf != nil {
		return io.NopCloser(bytes.NewReader(b.buf))
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, 512)
	}
	return recording{b}
}

// replayable reports whether the whole body was recorded. A body of
// known length that the attempt did not read to its end (the upstream
// answered first) is read to its end now, up to retryBodyMax.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.size >= 0 && !b.eof && !b.overflow && b.err == nil && b.buf != nil {
		if b.size > retryBodyMax {
			return false
		}
		rest := b.size - int64(len(b.buf))
		if rest > 0 {
			n := len(b.buf)
			b.buf = append(b.buf, make([]byte, rest)...)
			if _, err := io.ReadFull(b.src, b.buf[n:]); err != nil {
				b.err = err
				return false
			}
		}
		b.eof = true
	}
	return b.eof && !b.overflow && b.err == nil
}

// recording reads the original body and records it; Close does not close
// it (the server does, and a retry may read the recording).
type recording struct{ b *replayBody }

func (r recording) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 && !b.overflow {
		if len(b.buf)+n > retryBodyMax {
			b.overflow, b.buf = true, nil
		} else {
			b.buf = append(b.buf, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

func (r recording) Close() error { return nil }

// activeBody is a request body whose reads are activity for the stream
// idle timeout.
type activeBody struct {
	io.ReadCloser
	wd *watchdog
}

func (b activeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.wd.touch()
	}
	return n, err
}

// watchdog ends an attempt's context when one of its bounds passes: the
// stream idle timeout counts from the last activity.
type watchdog struct {
	dl     deadlines // a copy: the timer reads it while the exchange goes on
	cancel context.CancelCauseFunc
	timer  *time.Timer
	last   atomic.Int64 // unix nanoseconds of the last activity
	kind   atomic.Uint32
}

var errWatchdog = errors.New("stream timeout")

// startWatchdog returns the context of an attempt bounded by dl.
func startWatchdog(parent context.Context, dl deadlines) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	wd := &watchdog{dl: dl, cancel: cancel}
	now := time.Now()
	wd.last.Store(now.UnixNano())
	if at, _ := dl.next(now); !at.IsZero() {
		// Armed once wd.timer is set: check may Reset it.
		wd.timer = time.AfterFunc(time.Duration(math.MaxInt64), wd.check)
		wd.timer.Reset(at.Sub(now))
	}
	return ctx, wd
}

func (wd *watchdog) check() {
	now := time.Now()
	at, kind := wd.dl.next(time.Unix(0, wd.last.Load()))
	if now.Before(at) {
		wd.timer.Reset(at.Sub(now))
		return
	}
	wd.kind.Store(uint32(kind))
	wd.cancel(errWatchdog)
}

// touch records activity (for the stream idle timeout).
func (wd *watchdog) touch() {
	if wd.dl.idle > 0 {
		wd.last.Store(time.Now().UnixNano())
	}
}

// fired returns the kind of the bound that ended the attempt, or dlNone.
func (wd *watchdog) fired() deadlineKind { return deadlineKind(wd.kind.Load()) }

func (wd *watchdog) stop() {
	if wd.timer != nil {
		wd.timer.Stop()
	}
	wd.cancel(nil)
}

// throttle paces a response body at a number of KiB per second (fault
// response_rate_limit).
type throttle struct {
	rate  float64 // bytes per second
	start time.Time
	sent  int64
}

func newThrottle(kbps uint64) *throttle {
	return &throttle{rate: float64(kbps) * 1024, start: time.Now()}
}

// piece is the size of the writes: about a twentieth of a second's worth.
func (t *throttle) piece() int { return max(1, int(t.rate/20)) }

// wait sleeps until n more bytes may go.
func (t *throttle) wait(n int) {
	t.sent += int64(n)
	due := t.start.Add(time.Duration(float64(t.sent) / t.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}
