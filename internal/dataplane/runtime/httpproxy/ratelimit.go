package httpproxy

import (
	"errors"
	"fmt"
	"net/textproto"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// LocalRateLimitFilterName is the name of the local rate limit HTTP filter.
const LocalRateLimitFilterName = "envoy.filters.http.local_ratelimit"

const localRateLimitTypeURL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

// bodyRateLimited is the body of a response refused by the local rate
// limit filter, as Envoy words it.
const bodyRateLimited = "local_rate_limited"

// minFillInterval is the shortest fill_interval Envoy accepts.
const minFillInterval = 50 * time.Millisecond

// localRateLimit is a compiled HTTP LocalRateLimit: a token bucket shared
// by the requests of the filter's connection manager.
type localRateLimit struct {
	bucket   tokenBucket
	enabled  percent
	enforced percent
	status   int
	headers  []replyHeader

	statEnabled, statEnforced, statLimited, statOK *stats.Counter
}

// replyHeader is a response header added to a local reply.
type replyHeader struct {
	name, value string
	// replace: OVERWRITE_IF_EXISTS_OR_ADD (else the value is appended).
	replace bool
}

func compileLocalRateLimit(c *localratelimitv3.LocalRateLimit, reg stats.Registry) (*localRateLimit, error) {
	if c.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix is required")
	}
	tb := c.GetTokenBucket()
	if tb == nil {
		return nil, errors.New("token_bucket is required")
	}
	interval, err := xdsutil.Duration(tb.GetFillInterval(), 0)
	if err != nil {
		return nil, fmt.Errorf("token_bucket.fill_interval: %w", err)
	}
	if interval < minFillInterval {
		return nil, fmt.Errorf("token_bucket.fill_interval must be at least %v", minFillInterval)
	}
	perFill := uint32(1)
	if tb.GetTokensPerFill() != nil {
		perFill = tb.GetTokensPerFill().GetValue()
	}
	if tb.GetMaxTokens() == 0 {
		return nil, errors.New("token_bucket.max_tokens must be positive")
	}
	l := &localRateLimit{
		bucket: tokenBucket{
			tokens: int64(tb.GetMaxTokens()), max: int64(tb.GetMaxTokens()),
			perFill: int64(perFill), interval: interval, last: time.Now(),
		},
		enabled:  compilePercent(c.GetFilterEnabled().GetDefaultValue()),
		enforced: compilePercent(c.GetFilterEnforced().GetDefaultValue()),
		status:   429,
	}
	if c.GetFilterEnabled() == nil {
		l.enabled = percent{0, 100} // Envoy's default: disabled
	}
	if c.GetFilterEnforced() == nil {
		l.enforced = percent{0, 100}
	}
	if c.GetStatus() != nil {
		code := int(c.GetStatus().GetCode())
		if code < 400 || code > 599 {
			return nil, fmt.Errorf("status.code %d is out of range 400-599", code)
		}
		l.status = code
	}
	for i, h := range c.GetResponseHeadersToAdd() {
		hta, err := compileReplyHeader(h)
		if err != nil {
			return nil, fmt.Errorf("response_headers_to_add[%d]: %w", i, err)
		}
		l.headers = append(l.headers, hta)
	}
	sc := stats.NewScope(reg, c.GetStatPrefix()+".http_local_rate_limit")
	l.statEnabled = sc.Counter("enabled")
	l.statEnforced = sc.Counter("enforced")
	l.statLimited = sc.Counter("rate_limited")
	l.statOK = sc.Counter("ok")
	return l, nil
}

func compileReplyHeader(h *corev3.HeaderValueOption) (replyHeader, error) {
	name := h.GetHeader().GetKey()
	if name == "" {
		return replyHeader{}, errors.New("header.key is required")
	}
	if !isToken([]byte(name)) {
		return replyHeader{}, fmt.Errorf("header.key %q is not a valid header name", name)
	}
	v := h.GetHeader().GetValue()
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return replyHeader{}, fmt.Errorf("header %q: the value has a control character", name)
		}
	}
	hta := replyHeader{name: textproto.CanonicalMIMEHeaderKey(name), value: v}
	switch h.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		hta.replace = true
	default:
		return replyHeader{}, fmt.Errorf("append_action %s is not supported by trellis-dp", h.GetAppendAction())
	}
	return hta, nil
}

// apply takes a token for the request, when the filter is enabled for it,
// and refuses the request in v when none is left and enforcement applies.
func (l *localRateLimit) apply(v *verdict) {
	if !l.enabled.hit() {
		return
	}
	l.statEnabled.Inc()
	if l.bucket.take(time.Now()) {
		l.statOK.Inc()
		return
	}
	l.statLimited.Inc()
	if !l.enforced.hit() {
		return
	}
	l.statEnforced.Inc()
	v.status, v.body, v.headers = l.status, bodyRateLimited, l.headers
}

// tokenBucket refills perFill tokens every interval up to max, as
// Envoy's token bucket, computed when a token is taken.
type tokenBucket struct {
	mu       sync.Mutex
	tokens   int64
	max      int64
	perFill  int64
	interval time.Duration
	last     time.Time // the last fill
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed >= b.interval {
		n := int64(elapsed / b.interval)
		b.tokens = min(b.max, b.tokens+n*b.perFill)
		b.last = b.last.Add(time.Duration(n) * b.interval)
	}
	if b.tokens > 0 {
		b.tokens--
		return true
	}
	return false
}
