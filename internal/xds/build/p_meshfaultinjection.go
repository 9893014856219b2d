package build

import (
	"fmt"
	"regexp"
	"strconv"

	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/policy/meshfaultinjection"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshFaultInjection (docs/xds-contract.md, "Traffic policies"): the
// faults configured for every client of an HTTP inbound (the from[] Mesh
// rule, with rules[] merged over it) become HTTP fault filters before
// the router, one per http[] item, in order. from[] rules for some
// clients only (MeshService, MeshSubset) are not applied yet: they need
// the client's identity in the request.

const meshFaultInjectionKind = "MeshFaultInjection"

// faultFilterName is the HTTP fault filter's name (Envoy's).
const faultFilterName = "envoy.filters.http.fault"

func init() {
	register(Plugin{
		Name:  meshFaultInjectionKind,
		Order: 150,
		InboundHCM: func(p *proxymodel.Proxy, in *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error {
			conf, ok, err := inboundConf[meshfaultinjection.Conf](p, meshFaultInjectionKind, in)
			if err != nil || !ok {
				return err
			}
			for i, f := range conf.HTTP {
				hf, err := faultFilter(f)
				if err != nil {
					return fmt.Errorf("inbound %s:%d: http[%d]: %w", in.Address, in.Port, i, err)
				}
				insertHTTPFilter(m, hf)
			}
			return nil
		},
	})
}

// faultFilter is the fault filter of one http[] item.
func faultFilter(f meshfaultinjection.FaultInjectionConf) (*hcmv3.HttpFilter, error) {
	hf := &faultv3.HTTPFault{}
	if a := f.Abort; a != nil {
		pct, err := faultPercent(a.Percentage)
		if err != nil {
			return nil, fmt.Errorf("abort.percentage: %w", err)
		}
		hf.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(a.HTTPStatus)},
			Percentage: pct,
		}
	}
	if d := f.Delay; d != nil {
		pct, err := faultPercent(d.Percentage)
		if err != nil {
			return nil, fmt.Errorf("delay.percentage: %w", err)
		}
		hf.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: pbDuration(&d.Value)},
			Percentage:         pct,
		}
	}
	if b := f.ResponseBandwidth; b != nil {
		pct, err := faultPercent(b.Percentage)
		if err != nil {
			return nil, fmt.Errorf("responseBandwidth.percentage: %w", err)
		}
		kbps, err := bandwidthKbps(b.Limit)
		if err != nil {
			return nil, fmt.Errorf("responseBandwidth.limit: %w", err)
		}
		hf.ResponseRateLimit = &faultcommonv3.FaultRateLimit{
			LimitType:  &faultcommonv3.FaultRateLimit_FixedLimit_{FixedLimit: &faultcommonv3.FaultRateLimit_FixedLimit{LimitKbps: kbps}},
			Percentage: pct,
		}
	}
	cfg, err := anyOf(hf)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: faultFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}, nil
}

// faultPercent is an optional percentage (the API requires it).
func faultPercent(v *common.IntOrString) (*typev3.FractionalPercent, error) {
	if v == nil {
		return nil, nil
	}
	return percent(v)
}

// bandwidthRE splits Kuma's bandwidth notation (validated by the API).
var bandwidthRE = regexp.MustCompile(`^(\d+)\s?([GMk]?bps)$`)

// bandwidthKbps converts "10kbps", "50Mbps", "1Gbps" or "8000bps" to
// kilobits per second; Envoy's minimum is 1.
func bandwidthKbps(limit string) (uint64, error) {
	m := bandwidthRE.FindStringSubmatch(limit)
	if m == nil {
		return 0, fmt.Errorf("%q is not a rate", limit)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", limit, err)
	}
	switch m[2] {
	case "bps":
		n /= 1000
	case "Mbps":
		n *= 1000
	case "Gbps":
		n *= 1000 * 1000
	}
	if n < 1 {
		return 0, fmt.Errorf("%q is below 1kbps", limit)
	}
	return n, nil
}
