package build

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httplrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netlrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/policy/meshratelimit"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshRateLimit (docs/xds-contract.md, "Traffic policies"): the local
// limits configured for every client of an inbound (the from[] Mesh rule,
// with rules[] merged over it). An HTTP inbound gets a local rate limit
// HTTP filter before the router (requests per interval, always enabled
// and enforced, with the configured status and response headers); a TCP
// inbound a local rate limit network filter before tcp_proxy
// (connections per interval). A bucket starts full and holds one
// interval's worth of tokens, as in Kuma.

const meshRateLimitKind = "MeshRateLimit"

// Filter names and stat prefixes.
const (
	httpLocalRateLimitName   = "envoy.filters.http.local_ratelimit"
	tcpLocalRateLimitName    = "envoy.filters.network.local_ratelimit"
	httpRateLimitStatPrefix  = "rate_limit"
	tcpRateLimitStatPrefix   = "tcp_rate_limit"
	rateLimitAlwaysInPercent = 100
)

func init() {
	register(Plugin{
		Name:  meshRateLimitKind,
		Order: 160,
		InboundHCM: func(p *proxymodel.Proxy, in *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error {
			conf, ok, err := inboundConf[meshratelimit.Conf](p, meshRateLimitKind, in)
			if err != nil || !ok || conf.Local == nil {
				return err
			}
			h := conf.Local.HTTP
			if h == nil || deref(h.Disabled) || h.RequestRate == nil {
				return nil
			}
			f, err := httpRateLimitFilter(h)
			if err != nil {
				return fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
			}
			insertHTTPFilter(m, f)
			return nil
		},
		InboundNetworkFilters: func(p *proxymodel.Proxy, in *proxymodel.Inbound) ([]*listenerv3.Filter, error) {
			if isHTTP(in.Protocol) {
				return nil, nil
			}
			conf, ok, err := inboundConf[meshratelimit.Conf](p, meshRateLimitKind, in)
			if err != nil || !ok || conf.Local == nil {
				return nil, err
			}
			t := conf.Local.TCP
			if t == nil || deref(t.Disabled) || t.ConnectionRate == nil {
				return nil, nil
			}
			cfg, err := anyOf(&netlrlv3.LocalRateLimit{StatPrefix: tcpRateLimitStatPrefix, TokenBucket: tokenBucket(t.ConnectionRate)})
			if err != nil {
				return nil, err
			}
			return []*listenerv3.Filter{{Name: tcpLocalRateLimitName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: cfg}}}, nil
		},
	})
}

func tokenBucket(r *meshratelimit.Rate) *typev3.TokenBucket {
	return &typev3.TokenBucket{
		MaxTokens:     r.Num,
		TokensPerFill: wrapperspb.UInt32(r.Num),
		FillInterval:  pbDuration(&r.Interval),
	}
}

func httpRateLimitFilter(h *meshratelimit.LocalHTTP) (*hcmv3.HttpFilter, error) {
	always := func() *corev3.RuntimeFractionalPercent {
		return &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
			Numerator: rateLimitAlwaysInPercent, Denominator: typev3.FractionalPercent_HUNDRED,
		}}
	}
	rl := &httplrlv3.LocalRateLimit{
		StatPrefix:     httpRateLimitStatPrefix,
		TokenBucket:    tokenBucket(h.RequestRate),
		FilterEnabled:  always(),
		FilterEnforced: always(),
	}
	if o := h.OnRateLimit; o != nil {
		if o.Status != nil {
			rl.Status = &typev3.HttpStatus{Code: typev3.StatusCode(*o.Status)}
		}
		if hm := o.Headers; hm != nil {
			for _, kv := range hm.Add {
				rl.ResponseHeadersToAdd = append(rl.ResponseHeadersToAdd, &corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: kv.Name, Value: kv.Value},
					AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
				})
			}
			// As Kuma: a set value with commas is several values (the
			// first replaces, the others are appended to it).
			for _, kv := range hm.Set {
				action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
				for _, v := range strings.Split(kv.Value, ",") {
					rl.ResponseHeadersToAdd = append(rl.ResponseHeadersToAdd, &corev3.HeaderValueOption{
						Header: &corev3.HeaderValue{Key: kv.Name, Value: v}, AppendAction: action,
					})
					action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
				}
			}
		}
	}
	cfg, err := anyOf(rl)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: httpLocalRateLimitName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}, nil
}
