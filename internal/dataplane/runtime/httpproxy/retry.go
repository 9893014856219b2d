package httpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// retryOn is the set of retry_on conditions of a retry policy.
type retryOn uint32

// The retry_on conditions (Envoy's x-envoy-retry-on and
// x-envoy-retry-grpc-on values).
const (
	retry5xx retryOn = 1 << iota
	retryGatewayError
	retryReset
	retryConnectFailure
	retryRetriable4xx
	retryRefusedStream
	retryStatusCodes
	retryHeaders
	retryGRPCCancelled
	retryGRPCDeadlineExceeded
	retryGRPCInternal
	retryGRPCResourceExhausted
	retryGRPCUnavailable
)

var retryOnNames = map[string]retryOn{
	"5xx":                    retry5xx,
	"gateway-error":          retryGatewayError,
	"reset":                  retryReset,
	"connect-failure":        retryConnectFailure,
	"retriable-4xx":          retryRetriable4xx,
	"refused-stream":         retryRefusedStream,
	"retriable-status-codes": retryStatusCodes,
	"retriable-headers":      retryHeaders,
	"cancelled":              retryGRPCCancelled,
	"deadline-exceeded":      retryGRPCDeadlineExceeded,
	"internal":               retryGRPCInternal,
	"resource-exhausted":     retryGRPCResourceExhausted,
	"unavailable":            retryGRPCUnavailable,
}

// grpcRetryOn maps a grpc-status value to its retry_on condition.
var grpcRetryOn = map[string]retryOn{
	"1":  retryGRPCCancelled,
	"4":  retryGRPCDeadlineExceeded,
	"8":  retryGRPCResourceExhausted,
	"13": retryGRPCInternal,
	"14": retryGRPCUnavailable,
}

// Envoy's retry defaults.
const (
	defaultNumRetries       = 1
	defaultRetryBase        = 25 * time.Millisecond
	defaultRateLimitedMax   = 300 * time.Second
	retryBodyMax            = 1 << 20 // per_request_buffer_limit: larger bodies are not retried
	retryDiscardMax         = 64 << 10
	rateLimitedJitterFactor = 2 // random(interval, interval*1.5)
)

// retryPolicy is a compiled RetryPolicy.
type retryPolicy struct {
	on             retryOn
	numRetries     int
	perTry         time.Duration // 0: none
	base, max      time.Duration
	statusCodes    []int
	headers        []headerMatch // retriable_headers, on the response
	requestHeaders []headerMatch // retriable_request_headers
	resetHeaders   []resetHeader
	resetMax       time.Duration
}

// resetHeader is a rate_limited_retry_back_off reset header.
type resetHeader struct {
	name string // canonical
	unix bool   // UNIX_TIMESTAMP, else SECONDS
}

func compileRetryPolicy(p *routev3.RetryPolicy) (*retryPolicy, error) {
	if p == nil {
		return nil, nil
	}
	rp := &retryPolicy{numRetries: defaultNumRetries}
	for name := range strings.SplitSeq(p.GetRetryOn(), ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		f, ok := retryOnNames[name]
		if !ok {
			return nil, fmt.Errorf("retry_on: %q is not supported by trellis-dp", name)
		}
		rp.on |= f
	}
	if n := p.GetNumRetries(); n != nil {
		rp.numRetries = int(min(n.GetValue(), 1000))
	}
	var err error
	if rp.perTry, err = xdsutil.Duration(p.GetPerTryTimeout(), 0); err != nil {
		return nil, fmt.Errorf("per_try_timeout: %w", err)
	}
	if rp.base, err = xdsutil.Duration(p.GetRetryBackOff().GetBaseInterval(), defaultRetryBase); err != nil {
		return nil, fmt.Errorf("retry_back_off.base_interval: %w", err)
	}
	if p.GetRetryBackOff() != nil && rp.base <= 0 {
		return nil, errors.New("retry_back_off.base_interval must be positive")
	}
	if rp.max, err = xdsutil.Duration(p.GetRetryBackOff().GetMaxInterval(), 10*rp.base); err != nil {
		return nil, fmt.Errorf("retry_back_off.max_interval: %w", err)
	}
	if rp.max < rp.base {
		return nil, errors.New("retry_back_off.max_interval must not be less than base_interval")
	}
	for i, c := range p.GetRetriableStatusCodes() {
		if c < 100 || c > 599 {
			return nil, fmt.Errorf("retriable_status_codes[%d]: %d is not an HTTP status", i, c)
		}
		rp.statusCodes = append(rp.statusCodes, int(c))
	}
	if rp.headers, err = compileHeaderMatches("retriable_headers", p.GetRetriableHeaders()); err != nil {
		return nil, err
	}
	if rp.requestHeaders, err = compileHeaderMatches("retriable_request_headers", p.GetRetriableRequestHeaders()); err != nil {
		return nil, err
	}
	if rl := p.GetRateLimitedRetryBackOff(); rl != nil {
		if len(rl.GetResetHeaders()) == 0 {
			return nil, errors.New("rate_limited_retry_back_off.reset_headers is required")
		}
		for i, h := range rl.GetResetHeaders() {
			if h.GetName() == "" {
				return nil, fmt.Errorf("rate_limited_retry_back_off.reset_headers[%d].name is required", i)
			}
			rp.resetHeaders = append(rp.resetHeaders, resetHeader{
				name: textproto.CanonicalMIMEHeaderKey(h.GetName()),
				unix: h.GetFormat() == routev3.RetryPolicy_UNIX_TIMESTAMP,
			})
		}
		if rp.resetMax, err = xdsutil.Duration(rl.GetMaxInterval(), defaultRateLimitedMax); err != nil {
			return nil, fmt.Errorf("rate_limited_retry_back_off.max_interval: %w", err)
		}
	}
	return rp, nil
}

func compileHeaderMatches(field string, list []*routev3.HeaderMatcher) ([]headerMatch, error) {
	var out []headerMatch
	for i, h := range list {
		hm, err := compileHeaderMatch(h)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, hm)
	}
	return out, nil
}

// requestAllowed reports whether the request may be retried at all
// (retriable_request_headers: one of them matches, when any is set).
func (p *retryPolicy) requestAllowed(r request, path string) bool {
	if len(p.requestHeaders) == 0 {
		return true
	}
	for i := range p.requestHeaders {
		if p.requestHeaders[i].matches(r, path) {
			return true
		}
	}
	return false
}

// retriableStatus reports whether a response with the given status and
// headers (what header returns) calls for a retry.
func (p *retryPolicy) retriableStatus(status int, h request) bool {
	on := p.on
	switch {
	case on&retry5xx != 0 && status >= 500,
		on&retryGatewayError != 0 && (status == 502 || status == 503 || status == 504),
		on&retryRetriable4xx != 0 && status == 409,
		on&retryStatusCodes != 0 && slices.Contains(p.statusCodes, status):
		return true
	}
	if on&retryHeaders != 0 {
		for i := range p.headers {
			if p.headers[i].matches(h, "") {
				return true
			}
		}
	}
	if on >= retryGRPCCancelled {
		if v, ok := h.header("Grpc-Status"); ok {
			if f, ok := grpcRetryOn[strings.TrimSpace(v)]; ok && on&f != 0 {
				return true
			}
		}
	}
	return false
}

// attemptFailure classifies an attempt that ended without a response.
type attemptFailure uint8

const (
	failReset         attemptFailure = iota // reset, disconnect, malformed response
	failConnect                             // connection failure
	failPerTryTimeout                       // the per-try timeout fired
	failRefusedStream                       // HTTP/2 REFUSED_STREAM
)

// retriableFailure reports whether an attempt that failed that way calls
// for a retry, as Envoy's retry state decides for resets.
func (p *retryPolicy) retriableFailure(f attemptFailure) bool {
	on := p.on
	if on&(retry5xx|retryGatewayError|retryReset) != 0 {
		return true
	}
	switch f {
	case failConnect:
		return on&retryConnectFailure != 0
	case failRefusedStream:
		return on&retryRefusedStream != 0
	}
	return false
}

// backOff returns the wait before retry number n (1 for the first retry):
// Envoy's jittered exponential back-off, random in [0, base*(2^n-1))
// capped at max, or the rate-limited back-off from a reset header of the
// response, random in [interval, 1.5*interval).
func (p *retryPolicy) backOff(n int, h request) time.Duration {
	if h != nil {
		for _, rh := range p.resetHeaders {
			v, ok := h.header(rh.name)
			if !ok {
				continue
			}
			if i := strings.IndexByte(v, ','); i >= 0 {
				v = v[:i] // the first value only
			}
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || secs < 0 {
				continue
			}
			var d time.Duration
			if rh.unix {
				d = time.Until(time.Unix(secs, 0))
				if d < 0 {
					continue
				}
			} else {
				d = time.Duration(secs) * time.Second
			}
			if d > p.resetMax {
				continue
			}
			if d <= 0 {
				return 0
			}
			return d + rand.N(d/rateLimitedJitterFactor+1)
		}
	}
	ceiling := p.max
	if n < 30 {
		if b := p.base * time.Duration(1<<n-1); b > 0 && b < ceiling {
			ceiling = b
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// retryStats are the retry counters of a cluster, named as Envoy's
// (upstream_rq_retry_overflow is the cluster's: Begin counts it).
type retryStats struct {
	retry, success, perTryTimeout *stats.Counter
}

func newRetryStats(reg stats.Registry, cluster string) *retryStats {
	sc := stats.NewScope(reg, "cluster."+cluster)
	return &retryStats{
		retry:         sc.Counter("upstream_rq_retry"),
		success:       sc.Counter("upstream_rq_retry_success"),
		perTryTimeout: sc.Counter("upstream_rq_per_try_timeout"),
	}
}

// registerRetryStats makes the retry counters of the clusters that routes
// with a retry policy or a per-try timeout forward to, while the
// configuration's metrics are being registered.
func (h *Handler) registerRetryStats() {
	if h.routes == nil {
		return
	}
	h.retryStats = map[string]*retryStats{}
	h.routes.eachRoute(func(r *route) {
		if r.kind != actionForward || r.res.retry == nil {
			return
		}
		for _, t := range r.targets {
			if _, ok := h.retryStats[t.name]; !ok {
				h.retryStats[t.name] = newRetryStats(h.reg, t.name)
			}
		}
	})
}

// retryStatsFor returns the retry counters of the named cluster.
func (h *Handler) retryStatsFor(cluster string) *retryStats {
	if rs := h.retryStats[cluster]; rs != nil {
		return rs
	}
	return &unregisteredRetryStats // cannot happen: every route's clusters are registered
}

var unregisteredRetryStats = retryStats{retry: new(stats.Counter), success: new(stats.Counter), perTryTimeout: new(stats.Counter)}

// eachRoute calls fn for every route of the table.
func (t *RouteTable) eachRoute(fn func(*route)) {
	seen := map[*virtualHost]bool{}
	visit := func(vh *virtualHost) {
		if vh == nil || seen[vh] {
			return
		}
		seen[vh] = true
		for i := range vh.routes {
			fn(&vh.routes[i])
		}
	}
	for _, vh := range t.exact {
		visit(vh)
	}
	for _, w := range t.suffixes {
		visit(w.vh)
	}
	for _, w := range t.prefixes {
		visit(w.vh)
	}
	visit(t.fallback)
}

// resilience is what a forwarding route adds to its exchange: the retry
// policy and the route's stream idle timeout.
type resilience struct {
	retry *retryPolicy // nil: no retries
	// idle overrides the connection manager's stream_idle_timeout when
	// idleSet (0 disables it for the route).
	idle    time.Duration
	idleSet bool
}

func (r *resilience) compile(a *routev3.RouteAction) error {
	var err error
	if r.retry, err = compileRetryPolicy(a.GetRetryPolicy()); err != nil {
		return fmt.Errorf("retry_policy: %w", err)
	}
	if a.GetIdleTimeout() != nil {
		r.idleSet = true
		if r.idle, err = xdsutil.Duration(a.GetIdleTimeout(), 0); err != nil {
			return fmt.Errorf("idle_timeout: %w", err)
		}
	}
	return nil
}
