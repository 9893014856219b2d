package httpproxy

import (
	"fmt"
	"net"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
)

// Envoy's connection manager defaults.
const (
	defaultConnIdleTimeout   = time.Hour
	defaultStreamIdleTimeout = 5 * time.Minute
)

// Bodies of the timeout replies, as Envoy words them.
const (
	bodyStreamTimeout   = "stream timeout"
	bodyStreamDuration  = "downstream duration timeout"
	bodyUpstreamMaxDur  = "upstream max stream duration reached"
	bodyRequestHeadersT = "request headers timeout"
)

// hcmTimeouts are the connection manager's timeouts; zero disables one.
type hcmTimeouts struct {
	// connIdle closes a downstream connection without requests for that
	// long (common_http_protocol_options.idle_timeout; set: true when the
	// HCM says, else the listener's default applies).
	connIdle    time.Duration
	connIdleSet bool
	// maxConn closes a downstream connection gracefully once it is that
	// old (max_connection_duration).
	maxConn time.Duration
	// maxStream caps each request, answered 504 when no response started
	// (max_stream_duration).
	maxStream time.Duration
	// streamIdle ends a request with no activity for that long
	// (stream_idle_timeout; a route's idle_timeout overrides it).
	streamIdle time.Duration
	// requestHeaders bounds the reception of a request head, from its
	// first byte (request_headers_timeout).
	requestHeaders time.Duration
}

func compileHCMTimeouts(cfg *hcmv3.HttpConnectionManager) (hcmTimeouts, error) {
	var t hcmTimeouts
	var err error
	po := cfg.GetCommonHttpProtocolOptions()
	t.connIdle, t.connIdleSet = defaultConnIdleTimeout, po.GetIdleTimeout() != nil
	if t.connIdle, err = xdsutil.Duration(po.GetIdleTimeout(), defaultConnIdleTimeout); err != nil {
		return t, fmt.Errorf("common_http_protocol_options.idle_timeout: %w", err)
	}
	if t.maxConn, err = xdsutil.Duration(po.GetMaxConnectionDuration(), 0); err != nil {
		return t, fmt.Errorf("common_http_protocol_options.max_connection_duration: %w", err)
	}
	if t.maxStream, err = xdsutil.Duration(po.GetMaxStreamDuration(), 0); err != nil {
		return t, fmt.Errorf("common_http_protocol_options.max_stream_duration: %w", err)
	}
	if t.streamIdle, err = xdsutil.Duration(cfg.GetStreamIdleTimeout(), defaultStreamIdleTimeout); err != nil {
		return t, fmt.Errorf("stream_idle_timeout: %w", err)
	}
	if t.requestHeaders, err = xdsutil.Duration(cfg.GetRequestHeadersTimeout(), 0); err != nil {
		return t, fmt.Errorf("request_headers_timeout: %w", err)
	}
	return t, nil
}

// deadlineKind says which timeout a deadline comes from, to answer as
// Envoy does when it fires.
type deadlineKind uint8

const (
	dlNone        deadlineKind = iota
	dlRoute                    // route timeout: 504 upstream request timeout
	dlPerTry                   // per_try_timeout: 504, or a retry
	dlIdle                     // stream idle: 504 stream timeout
	dlMaxStream                // HCM max_stream_duration: 504 downstream duration timeout
	dlUpstreamMax              // cluster max_stream_duration: 504, or a retry
)

// deadlines are the bounds of one request on its way upstream.
type deadlines struct {
	route     time.Time // route timeout, from the request start
	maxStream time.Time // HCM max_stream_duration
	perTry    time.Time // this attempt's per_try_timeout
	upMax     time.Time // the cluster's max_stream_duration, for this attempt
	idle      time.Duration
}

// next returns the earliest bound from now on and its kind (the zero
// time: none). The stream idle bound is counted from now.
func (d *deadlines) next(now time.Time) (time.Time, deadlineKind) {
	var t time.Time
	k := dlNone
	consider := func(at time.Time, kind deadlineKind) {
		if !at.IsZero() && (t.IsZero() || at.Before(t)) {
			t, k = at, kind
		}
	}
	consider(d.route, dlRoute)
	consider(d.maxStream, dlMaxStream)
	consider(d.perTry, dlPerTry)
	consider(d.upMax, dlUpstreamMax)
	if d.idle > 0 {
		consider(now.Add(d.idle), dlIdle)
	}
	return t, k
}

// overall returns the earliest bound that no retry can extend (route and
// HCM max_stream_duration).
func (d *deadlines) overall() (time.Time, deadlineKind) {
	switch {
	case d.route.IsZero():
		if d.maxStream.IsZero() {
			return time.Time{}, dlNone
		}
		return d.maxStream, dlMaxStream
	case d.maxStream.IsZero() || d.route.Before(d.maxStream):
		return d.route, dlRoute
	}
	return d.maxStream, dlMaxStream
}

// fired returns the kind of the bound that has passed at now, given that
// a deadline of kind k (the earliest at the time it was set) fired.
func (d *deadlines) fired(k deadlineKind, now time.Time) deadlineKind {
	for _, c := range []struct {
		at   time.Time
		kind deadlineKind
	}{{d.route, dlRoute}, {d.maxStream, dlMaxStream}, {d.upMax, dlUpstreamMax}, {d.perTry, dlPerTry}} {
		if !c.at.IsZero() && !now.Before(c.at) {
			return c.kind
		}
	}
	return k
}

// timeoutReply is the local reply to a request whose deadline of kind k
// fired before its response started. Envoy answers 504 when the request
// was received whole (always so when these timeouts run: after the
// request), 408 otherwise.
func timeoutReply(k deadlineKind) (int, string) {
	switch k {
	case dlIdle:
		return 504, bodyStreamTimeout
	case dlMaxStream:
		return 504, bodyStreamDuration
	case dlUpstreamMax:
		return 504, bodyUpstreamMaxDur
	}
	return 504, bodyTimeout
}

// downWriter is what a fast-path connection's buffered writer writes to:
// the downstream connection, and while a response streams with a stream
// idle timeout, each write moves the upstream deadline on (activity).
type downWriter struct {
	conn net.Conn
	// The upstream connection whose deadline moves; nil: none.
	up       net.Conn
	dl       deadlines // a copy: the exchange stays on its goroutine's stack
	lastMove time.Time
}

func (w *downWriter) Write(p []byte) (int, error) {
	if w.up != nil {
		w.moveDeadline()
	}
	return w.conn.Write(p)
}

// moveDeadline sets the upstream deadline from now, at most every eighth
// of the idle timeout (a syscall per write would cost more than the
// precision is worth).
func (w *downWriter) moveDeadline() {
	now := time.Now()
	if now.Sub(w.lastMove) < w.dl.idle/8 {
		return
	}
	w.lastMove = now
	t, _ := w.dl.next(now)
	_ = w.up.SetDeadline(t)
}

// watch makes writes move up's deadline while a response streams.
func (w *downWriter) watch(up net.Conn, dl *deadlines) {
	if dl.idle <= 0 {
		return
	}
	w.up, w.dl, w.lastMove = up, *dl, time.Now()
}

func (w *downWriter) unwatch() { w.up = nil }
