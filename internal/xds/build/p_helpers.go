package build

import (
	"encoding/json"
	"fmt"
	"math/big"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Helpers shared by the traffic policy plugins (p_<kind>.go).

// outboundConf decodes the merged to[] conf of kind for an outbound's
// service; ok is false when no policy of the kind has one for it.
func outboundConf[T any](p *proxymodel.Proxy, kind string, out *proxymodel.Outbound) (conf T, ok bool, err error) {
	r := p.OutboundRule(kind, out.Service)
	if r == nil {
		return conf, false, nil
	}
	if conf, err = policy.Decode[T](r.Conf); err != nil {
		return conf, false, fmt.Errorf("to %s (%v): %w", out.Service, r.Origins, err)
	}
	return conf, true, nil
}

// inboundConf decodes what the policies of kind say about all traffic to
// an inbound: the from[] rule for the whole mesh, then the rules[] entries
// (least to most specific) merged over it. ok is false when there is
// neither.
func inboundConf[T any](p *proxymodel.Proxy, kind string, in *proxymodel.Inbound) (conf T, ok bool, err error) {
	var confs []json.RawMessage
	var origins []string
	if r := p.InboundRule(kind, in); r != nil {
		confs = append(confs, r.Conf)
		origins = append(origins, r.Origins...)
	}
	if im := p.InboundMatch(kind, in); im != nil {
		for _, e := range im.Rules {
			confs = append(confs, e.Conf)
			origins = append(origins, e.Policy)
		}
	}
	merged, err := policy.Merge(confs...)
	if err != nil {
		return conf, false, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
	}
	if merged == nil {
		return conf, false, nil
	}
	if conf, err = policy.Decode[T](merged); err != nil {
		return conf, false, fmt.Errorf("inbound %s:%d (%v): %w", in.Address, in.Port, origins, err)
	}
	return conf, true, nil
}

// pbDuration converts an API duration; nil stays nil.
func pbDuration(d *common.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return durationpb.New(d.Parse())
}

// routeActions calls edit on the action of every route of rc that
// forwards (redirects and direct responses have none).
func routeActions(rc *routev3.RouteConfiguration, edit func(*routev3.RouteAction) error) error {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if a := r.GetRoute(); a != nil {
				if err := edit(a); err != nil {
					return fmt.Errorf("route %q: %w", r.GetName(), err)
				}
			}
		}
	}
	return nil
}

// editCommonHTTPOptions edits the common_http_protocol_options of a
// cluster's upstream HTTP options, creating them (HTTP/1.1, or the
// HTTP/2 config withProtocol set) when missing.
func editCommonHTTPOptions(c *clusterv3.Cluster, edit func(*corev3.HttpProtocolOptions)) error {
	opts := &httpv3.HttpProtocolOptions{}
	if a := c.TypedExtensionProtocolOptions[httpProtocolOptionsKey]; a != nil {
		if err := a.UnmarshalTo(opts); err != nil {
			return fmt.Errorf("reading %s: %w", httpProtocolOptionsKey, err)
		}
	}
	if opts.UpstreamProtocolOptions == nil {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
					HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
				},
			},
		}
	}
	if opts.CommonHttpProtocolOptions == nil {
		opts.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{}
	}
	edit(opts.CommonHttpProtocolOptions)
	packed, err := anyOf(opts)
	if err != nil {
		return err
	}
	if c.TypedExtensionProtocolOptions == nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{}
	}
	c.TypedExtensionProtocolOptions[httpProtocolOptionsKey] = packed
	return nil
}

// percent converts a 0-100 percentage written as an integer or a decimal
// string into a FractionalPercent as Kuma does: whole percentages over
// HUNDRED, others over MILLION (rounded down to a millionth).
func percent(v *common.IntOrString) (*typev3.FractionalPercent, error) {
	r, err := v.Rat()
	if err != nil {
		return nil, err
	}
	if r.IsInt() {
		return &typev3.FractionalPercent{Numerator: uint32(r.Num().Uint64()), Denominator: typev3.FractionalPercent_HUNDRED}, nil
	}
	m := new(big.Rat).Mul(r, big.NewRat(10000, 1))
	n := new(big.Int).Quo(m.Num(), m.Denom())
	return &typev3.FractionalPercent{Numerator: uint32(n.Uint64()), Denominator: typev3.FractionalPercent_MILLION}, nil
}
