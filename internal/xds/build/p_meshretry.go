package build

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/policy/meshretry"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshRetry (docs/xds-contract.md, "Traffic policies"), to[] only: the
// retry_policy of every route of an HTTP outbound (the conf's http part
// for http and http2 services, its grpc part for grpc ones) and the
// tcp_proxy's max_connect_attempts of a TCP outbound. As in Kuma, a
// section without retryOn retries on the default conditions below, and
// numRetries 0 turns retries off.

const meshRetryKind = "MeshRetry"

// Retry conditions Kuma uses when a section has no retryOn.
const (
	httpRetryOnDefault = "gateway-error,connect-failure,refused-stream"
	grpcRetryOnDefault = "cancelled,connect-failure,gateway-error,refused-stream,reset,resource-exhausted,unavailable"
	retriableCodes     = "retriable-status-codes"
)

// httpRetryOn maps retryOn values to Envoy's x-envoy-retry-on names.
var httpRetryOn = map[meshretry.HTTPRetryOn]string{
	meshretry.All5xx:         "5xx",
	meshretry.GatewayError:   "gateway-error",
	meshretry.Reset:          "reset",
	meshretry.Retriable4xx:   "retriable-4xx",
	meshretry.ConnectFailure: "connect-failure",
	meshretry.RefusedStream:  "refused-stream",
}

// grpcRetryOn maps gRPC retryOn values to Envoy's x-envoy-retry-grpc-on
// names.
var grpcRetryOn = map[meshretry.GRPCRetryOn]string{
	meshretry.Canceled:          "cancelled",
	meshretry.DeadlineExceeded:  "deadline-exceeded",
	meshretry.Internal:          "internal",
	meshretry.ResourceExhausted: "resource-exhausted",
	meshretry.Unavailable:       "unavailable",
}

const httpMethodPrefix = "HttpMethod"

// defaultRetryBaseInterval is the back-off base when a section sets only
// the maximum.
const defaultRetryBaseInterval = 25 * time.Millisecond

func init() {
	register(Plugin{
		Name:             meshRetryKind,
		Order:            110,
		OutboundRoute:    retryOutboundRoute,
		OutboundTCPProxy: retryOutboundTCPProxy,
	})
}

func retryOutboundRoute(p *proxymodel.Proxy, out *proxymodel.Outbound, rc *routev3.RouteConfiguration) error {
	conf, ok, err := outboundConf[meshretry.Conf](p, meshRetryKind, out)
	if err != nil || !ok {
		return err
	}
	var rp *routev3.RetryPolicy
	if out.Protocol == mesh.ProtocolGRPC {
		rp, err = grpcRetryPolicy(conf.GRPC)
	} else {
		rp, err = httpRetryPolicy(conf.HTTP)
	}
	if err != nil {
		return fmt.Errorf("to %s: %w", out.Service, err)
	}
	if rp == nil {
		return nil
	}
	return routeActions(rc, func(a *routev3.RouteAction) error {
		a.RetryPolicy = proto.Clone(rp).(*routev3.RetryPolicy)
		return nil
	})
}

func retryOutboundTCPProxy(p *proxymodel.Proxy, out *proxymodel.Outbound, tp *tcpv3.TcpProxy) error {
	conf, ok, err := outboundConf[meshretry.Conf](p, meshRetryKind, out)
	if err != nil || !ok || conf.TCP == nil || conf.TCP.MaxConnectAttempt == nil {
		return err
	}
	tp.MaxConnectAttempts = wrapperspb.UInt32(*conf.TCP.MaxConnectAttempt)
	return nil
}

// retryCommon is what the http and grpc parts share.
func retryCommon(numRetries *uint32, backOff *meshretry.BackOff, rl *meshretry.RateLimitedBackOff, rp *routev3.RetryPolicy) (off bool) {
	if numRetries != nil {
		if *numRetries == 0 {
			return true
		}
		rp.NumRetries = wrapperspb.UInt32(*numRetries)
	}
	if backOff != nil {
		// Envoy requires a base interval; 25ms is its documented default.
		base := pbDuration(backOff.BaseInterval)
		if base == nil {
			base = durationpb.New(defaultRetryBaseInterval)
		}
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: base, MaxInterval: pbDuration(backOff.MaxInterval)}
	}
	if rl != nil {
		rp.RateLimitedRetryBackOff = &routev3.RetryPolicy_RateLimitedRetryBackOff{MaxInterval: pbDuration(rl.MaxInterval)}
		for _, h := range rl.ResetHeaders {
			format := routev3.RetryPolicy_SECONDS
			if h.Format == meshretry.UnixTimestamp {
				format = routev3.RetryPolicy_UNIX_TIMESTAMP
			}
			rp.RateLimitedRetryBackOff.ResetHeaders = append(rp.RateLimitedRetryBackOff.ResetHeaders,
				&routev3.RetryPolicy_ResetHeader{Name: h.Name, Format: format})
		}
	}
	return false
}

// httpRetryPolicy translates the http part; nil means no retries.
func httpRetryPolicy(h *meshretry.HTTP) (*routev3.RetryPolicy, error) {
	if h == nil {
		return nil, nil
	}
	if len(h.HostSelection) > 0 || h.HostSelectionMaxAttempts != nil {
		return nil, fmt.Errorf("http.hostSelection is not supported by trellis-dp")
	}
	rp := &routev3.RetryPolicy{RetryOn: httpRetryOnDefault, PerTryTimeout: pbDuration(h.PerTryTimeout)}
	if retryCommon(h.NumRetries, h.BackOff, h.RateLimitedBackOff, rp) {
		return nil, nil
	}
	var on []string
	for _, item := range h.RetryOn {
		s := string(item)
		if code, err := strconv.ParseUint(s, 10, 32); err == nil {
			rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(code))
			continue
		}
		if method, ok := strings.CutPrefix(s, httpMethodPrefix); ok {
			rp.RetriableRequestHeaders = append(rp.RetriableRequestHeaders, &routev3.HeaderMatcher{
				Name:                 ":method",
				HeaderMatchSpecifier: exactHeader(strings.ToUpper(method)),
			})
			continue
		}
		envoyName, ok := httpRetryOn[item]
		if !ok {
			return nil, fmt.Errorf("http.retryOn %q is not supported by trellis-dp", s)
		}
		on = append(on, envoyName)
	}
	if len(on) > 0 {
		rp.RetryOn = strings.Join(on, ",")
	}
	if len(rp.RetriableStatusCodes) > 0 && !containsItem(rp.RetryOn, retriableCodes) {
		rp.RetryOn += "," + retriableCodes
	}
	for _, m := range h.RetriableRequestHeaders {
		rp.RetriableRequestHeaders = append(rp.RetriableRequestHeaders, retryHeaderMatcher(m))
	}
	for _, m := range h.RetriableResponseHeaders {
		rp.RetriableHeaders = append(rp.RetriableHeaders, retryHeaderMatcher(m))
	}
	if len(rp.RetriableHeaders) > 0 && !containsItem(rp.RetryOn, "retriable-headers") {
		rp.RetryOn += ",retriable-headers"
	}
	return rp, nil
}

// grpcRetryPolicy translates the grpc part; nil means no retries.
func grpcRetryPolicy(g *meshretry.GRPC) (*routev3.RetryPolicy, error) {
	if g == nil {
		return nil, nil
	}
	rp := &routev3.RetryPolicy{RetryOn: grpcRetryOnDefault, PerTryTimeout: pbDuration(g.PerTryTimeout)}
	if retryCommon(g.NumRetries, g.BackOff, g.RateLimitedBackOff, rp) {
		return nil, nil
	}
	var on []string
	for _, item := range g.RetryOn {
		envoyName, ok := grpcRetryOn[item]
		if !ok {
			return nil, fmt.Errorf("grpc.retryOn %q is not supported by trellis-dp", item)
		}
		on = append(on, envoyName)
	}
	if len(on) > 0 {
		rp.RetryOn = strings.Join(on, ",")
	}
	return rp, nil
}

func containsItem(list, item string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == item {
			return true
		}
	}
	return false
}

func exactHeader(v string) *routev3.HeaderMatcher_StringMatch {
	return &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v},
	}}
}

// retryHeaderMatcher translates a header match; Absent is "present,
// inverted".
func retryHeaderMatcher(m meshretry.HeaderMatch) *routev3.HeaderMatcher {
	hm := &routev3.HeaderMatcher{Name: m.Name}
	t := meshretry.HeaderMatchExact
	if m.Type != nil {
		t = *m.Type
	}
	switch t {
	case meshretry.HeaderMatchPresent:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	case meshretry.HeaderMatchAbsent:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		hm.InvertMatch = true
	case meshretry.HeaderMatchPrefix:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: m.Value},
		}}
	case meshretry.HeaderMatchRegularExpression:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Value}},
		}}
	default:
		hm.HeaderMatchSpecifier = exactHeader(m.Value)
	}
	return hm
}
