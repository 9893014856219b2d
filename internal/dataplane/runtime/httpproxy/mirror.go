package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
)

// Request mirroring (RouteAction.request_mirror_policies): a copy of the
// request goes to each mirror cluster drawn by its runtime_fraction, with
// "-shadow" appended to the host as Envoy does, and its response is
// dropped. The copy never holds up or fails the main request: it is sent
// by a goroutine of its own after the main request's body was buffered,
// which happens only for bodies up to mirrorBodyMax (a larger body is not
// mirrored). Routes with mirrors are served by the net/http path.

// mirrorBodyMax is the largest request body buffered for mirrors.
const mirrorBodyMax = 1 << 20

// maxMirrorsInFlight bounds the shadow requests waiting for an answer
// across the process; beyond it, copies are dropped.
const maxMirrorsInFlight = 1024

// mirrorTimeout bounds a shadow request of a route without a timeout.
const mirrorTimeout = time.Minute

var mirrorsInFlight atomic.Int64

// mirrorPolicy is a compiled RequestMirrorPolicy.
type mirrorPolicy struct {
	name    string
	cluster *cluster.Cluster
	num     uint32 // runtime_fraction: num in den
	den     uint32
}

func compileMirrors(list []*routev3.RouteAction_RequestMirrorPolicy, resolve Resolver) ([]mirrorPolicy, error) {
	var out []mirrorPolicy
	for i, m := range list {
		if m.GetCluster() == "" {
			return nil, fmt.Errorf("request_mirror_policies[%d].cluster is required", i)
		}
		mp := mirrorPolicy{name: m.GetCluster(), cluster: resolve(m.GetCluster()), num: 100, den: 100}
		if rf := m.GetRuntimeFraction(); rf != nil {
			if rf.GetRuntimeKey() != "" {
				return nil, fmt.Errorf("request_mirror_policies[%d].runtime_fraction.runtime_key is not supported", i)
			}
			dv := rf.GetDefaultValue()
			switch dv.GetDenominator() {
			case typev3.FractionalPercent_HUNDRED:
				mp.den = 100
			case typev3.FractionalPercent_TEN_THOUSAND:
				mp.den = 10_000
			case typev3.FractionalPercent_MILLION:
				mp.den = 1_000_000
			}
			mp.num = min(dv.GetNumerator(), mp.den)
		}
		out = append(out, mp)
	}
	return out, nil
}

// shadowHost appends "-shadow" to a host, before its port.
func shadowHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		return host[:i] + "-shadow" + host[i:]
	}
	return host + "-shadow"
}

// mirror sends the copies of a request of the net/http path that its
// route's mirror policies draw. Call it after the route's request edits
// (the copies carry them) and before the request is forwarded: it may
// replace r.Body with one that replays the buffered bytes.
func (h *Handler) mirror(r *http.Request, rt *route) {
	var targets []*cluster.Cluster
	for i := range rt.mirrors {
		m := &rt.mirrors[i]
		if m.cluster == nil {
			h.log.Debug("mirror cluster not found", "cluster", m.name)
			continue
		}
		if m.num >= m.den || rand.Uint32N(m.den) < m.num {
			targets = append(targets, m.cluster)
		}
	}
	if len(targets) == 0 {
		return
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		buf, err := io.ReadAll(io.LimitReader(r.Body, mirrorBodyMax+1))
		rest := r.Body
		if err != nil {
			rest = io.NopCloser(errReader{err})
		}
		if err != nil || len(buf) > mirrorBodyMax {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buf), rest), r.Body}
			h.log.Debug("request body too large to mirror", "limit", mirrorBodyMax)
			return
		}
		body = buf
		r.Body = struct {
			io.Reader
			io.Closer
		}{bytes.NewReader(buf), r.Body}
	}
	path, _ := requestPath(r)
	timeout := rt.timeout
	if timeout <= 0 {
		timeout = mirrorTimeout
	}
	for _, c := range targets {
		if mirrorsInFlight.Add(1) > maxMirrorsInFlight {
			mirrorsInFlight.Add(-1)
			h.log.Debug("too many mirrored requests in flight, dropped", "cluster", c.Name())
			continue
		}
		out := &http.Request{
			Method:        r.Method,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        r.Header.Clone(),
			Host:          shadowHost(r.Host),
			ContentLength: int64(len(body)),
		}
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		go h.shadow(c, out, path, timeout)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// shadow sends a mirrored request and drops its response.
func (h *Handler) shadow(c *cluster.Cluster, out *http.Request, path string, timeout time.Duration) {
	defer mirrorsInFlight.Add(-1)
	req, err := c.Begin(false)
	if err != nil {
		h.log.Debug("mirror: circuit breaker overflow", "cluster", c.Name())
		return
	}
	start := time.Now()
	addr, err := c.PickHash(0, false)
	if err != nil {
		req.Done("", cluster.Outcome{Err: err, LocalOrigin: true})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	u, err := url.ParseRequestURI(path)
	if err != nil {
		u = &url.URL{Path: "/"}
	}
	u.Scheme, u.Host = c.Scheme(), addr
	out.URL = u
	out = out.WithContext(ctx)
	prepareRequestHeader(out.Header)
	resp, err := c.Transport().RoundTrip(out)
	if err != nil {
		req.Done(addr, cluster.Outcome{Err: err, LocalOrigin: true, Duration: time.Since(start)})
		if !errors.Is(err, context.Canceled) {
			h.log.Debug("mirror request failed", "cluster", c.Name(), "error", err)
		}
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	req.Done(addr, cluster.Outcome{Status: resp.StatusCode, Duration: time.Since(start)})
	c.Stats().RqTotal.Inc()
}
