package httpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tracing"
)

// The access logs (access_log) and tracing (tracing) of a connection
// manager, on both paths. A Handler without either has a nil observer,
// and the request paths skip all of this.

// observer is what a connection manager records of each request.
type observer struct {
	logs   *accesslog.Logger
	tracer *tracing.Tracer
}

// buildObserver builds the observer of cfg; nil when it has neither access
// logs nor tracing.
func buildObserver(cfg *hcmv3.HttpConnectionManager, resolve Resolver, reg stats.Registry) (*observer, error) {
	if len(cfg.GetAccessLog()) == 0 && cfg.GetTracing() == nil {
		return nil, nil
	}
	addr := func(name string) (string, error) {
		c := resolve(name)
		if c == nil {
			return "", fmt.Errorf("cluster %q not found", name)
		}
		return c.Pick()
	}
	o := &observer{}
	var err error
	if o.logs, err = accesslog.Build(cfg.GetAccessLog(), addr, reg); err != nil {
		return nil, err
	}
	if t := cfg.GetTracing(); t != nil {
		svc, _ := strings.CutPrefix(cfg.GetStatPrefix(), "inbound:")
		if o.tracer, err = tracing.Build(t, tracing.KindServer, svc, addr, reg); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	return o, nil
}

// SetOutbound tells the connection manager that it serves an outbound
// listener (traffic_direction OUTBOUND): its spans are client spans.
func (h *Handler) SetOutbound(outbound bool) {
	if h.obs != nil && h.obs.tracer != nil && outbound {
		h.obs.tracer = h.obs.tracer.WithKind(tracing.KindClient)
	}
}

// flagsOf maps a local reply to Envoy's response flags.
func flagsOf(status int, body string) string {
	switch body {
	case bodyNoHealthyUpstream:
		return "UH"
	case bodyTimeout:
		return "UT"
	case bodyConnectFailure:
		return "UF"
	case bodyReset:
		return "UC"
	case bodyNoCluster:
		return "NC"
	case bodyOverflow:
		return "UO"
	case bodyRateLimited:
		return "RL"
	case bodyFaultAbort:
		return "FI"
	case bodyStreamTimeout:
		return "SI"
	case bodyStreamDuration, bodyUpstreamMaxDur:
		return "UMSDR"
	case "":
		if status == http.StatusNotFound {
			return "NR"
		}
	}
	return ""
}

// obsState is the fast path's record of the request being served.
type obsState struct {
	start       time.Time
	span        *tracing.Span
	upstream    string
	cluster     string
	localStatus int
	localBody   string
}

// local records a local reply.
func (s *obsState) local(status int, body string) { s.localStatus, s.localBody = status, body }

// attempt records the endpoint an attempt goes to.
func (s *obsState) attempt(cluster, addr string) { s.cluster, s.upstream = cluster, addr }

// h1Headers reads the fields of a fast path head.
type h1Headers []field

func (f h1Headers) Get(name string) (string, bool) { return joinFields(f, name) }

// beginH1 starts recording the request in c.req: its span, whose
// context replaces the propagation headers of the request.
func (o *observer) beginH1(c *h1Conn, start time.Time) {
	c.obs = obsState{start: start}
	c.resp.code = 0
	if o.tracer == nil {
		return
	}
	req := &c.req
	sp := o.tracer.Start(func(n string) (string, bool) { return joinFields(req.fields, n) }, start)
	c.obs.span = sp
	for i := range req.fields {
		if tracing.IsPropagationHeader(req.fields[i].name) {
			req.fields[i].hop = true
		}
	}
	tracing.Inject(sp.Context, func(name, value string) {
		req.fields = append(req.fields, field{name: name, value: value})
	})
}

// endH1 logs and ends the span of the request served on the fast path.
func (o *observer) endH1(c *h1Conn) {
	s, req, resp := &c.obs, &c.req, &c.resp
	e := format.Entry{
		Start: s.start, Duration: time.Since(s.start),
		Method: req.meth, Path: req.target, Authority: req.host, Scheme: "http", Protocol: "HTTP/1.1",
		Request:         h1Headers(req.fields),
		UpstreamHost:    s.upstream,
		UpstreamCluster: s.cluster,
		BytesReceived:   max(req.contentLength, 0),
	}
	if s.localStatus != 0 {
		e.ResponseCode, e.BytesSent = s.localStatus, int64(len(s.localBody))
		e.Flags = flagsOf(s.localStatus, s.localBody)
	} else if resp.code != 0 {
		e.ResponseCode, e.Response, e.BytesSent = resp.code, h1Headers(resp.fields), max(resp.contentLength, 0)
	} else {
		e.Flags = "DC" // the downstream connection ended first
	}
	if c.conn != nil {
		e.DownstreamRemote, e.DownstreamLocal = c.conn.RemoteAddr().String(), c.conn.LocalAddr().String()
	}
	o.record(&e, s.span)
	s.span = nil
}

// record logs e and ends span.
func (o *observer) record(e *format.Entry, span *tracing.Span) {
	o.logs.Log(e)
	if span != nil {
		span.Finish(&tracing.Result{
			Method: e.Method, Authority: e.Authority, Path: e.Path, Protocol: e.Protocol,
			Status: e.ResponseCode, Flags: e.Flags, UpstreamCluster: e.UpstreamCluster,
			UpstreamHost: e.UpstreamHost, DownstreamRemote: e.DownstreamRemote,
			RequestSize: e.BytesReceived, ResponseSize: e.BytesSent,
		}, e.Start.Add(e.Duration))
	}
}

// obsWriter records the response of a request on the net/http path.
type obsWriter struct {
	http.ResponseWriter
	r           *http.Request
	start       time.Time
	span        *tracing.Span
	status      int
	bytes       int64
	upstream    string
	cluster     string
	localStatus int
	localBody   string
}

// begin starts recording a request on the net/http path; the handler
// serves it with the returned writer and calls end.
func (o *observer) begin(w http.ResponseWriter, r *http.Request) *obsWriter {
	ow := &obsWriter{ResponseWriter: w, r: r, start: time.Now()}
	if o.tracer != nil {
		h := r.Header
		sp := o.tracer.Start(func(n string) (string, bool) {
			v := h.Values(n)
			return strings.Join(v, ","), len(v) > 0
		}, ow.start)
		ow.span = sp
		for _, n := range tracing.PropagationHeaders {
			h.Del(n)
		}
		tracing.Inject(sp.Context, h.Set)
	}
	return ow
}

func (w *obsWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *obsWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *obsWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	flush(w.ResponseWriter)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *obsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack implements http.Hijacker when the wrapped writer does.
func (w *obsWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

// end logs and ends the span of the request.
func (o *observer) end(w *obsWriter) {
	r := w.r
	proto := "HTTP/1.1"
	switch {
	case r.ProtoMajor == 2:
		proto = "HTTP/2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		proto = "HTTP/1.0"
	}
	e := format.Entry{
		Start: w.start, Duration: time.Since(w.start),
		Method: r.Method, Path: r.URL.RequestURI(), Authority: r.Host, Scheme: "http", Protocol: proto,
		Request:          netHeaders(r.Header),
		Response:         netHeaders(w.Header()),
		ResponseCode:     w.status,
		UpstreamHost:     w.upstream,
		UpstreamCluster:  w.cluster,
		DownstreamRemote: r.RemoteAddr,
		BytesReceived:    max(r.ContentLength, 0),
		BytesSent:        w.bytes,
	}
	if w.localStatus != 0 {
		e.Flags = flagsOf(w.localStatus, w.localBody)
	}
	if e.ResponseCode == 0 {
		e.Flags = "DC"
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		e.DownstreamLocal = la.String()
	}
	o.record(&e, w.span)
}

// netHeaders reads a net/http header map.
type netHeaders http.Header

func (h netHeaders) Get(name string) (string, bool) {
	v := http.Header(h).Values(name)
	return strings.Join(v, ","), len(v) > 0
}

// noteLocal records a local reply on the net/http path.
func noteLocal(w http.ResponseWriter, status int, body string) {
	if ow, ok := w.(*obsWriter); ok {
		ow.localStatus, ow.localBody = status, body
	}
}

// noteUpstream records the endpoint of an attempt on the net/http path.
func noteUpstream(w http.ResponseWriter, cluster, addr string) {
	if ow, ok := w.(*obsWriter); ok {
		ow.cluster, ow.upstream = cluster, addr
	}
}
