package build

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sync"

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
// service; ok is false when no policy of the kind has one for it. The
// conf may share what it points to with other callers' (decodeShared):
// read it, never modify it.
func outboundConf[T any](p *proxymodel.Proxy, kind string, out *proxymodel.Outbound) (conf T, ok bool, err error) {
	r := p.OutboundRule(kind, out.Service)
	if r == nil {
		return conf, false, nil
	}
	if conf, err = decodeShared[T](r.Conf); err != nil {
		return conf, false, fmt.Errorf("to %s (%v): %w", out.Service, r.Origins, err)
	}
	return conf, true, nil
}

// inboundConf decodes what the policies of kind say about all traffic to
// an inbound: the from[] rule for the whole mesh, then the rules[] entries
// (least to most specific) merged over it. ok is false when there is
// neither. As for outboundConf, the conf is read-only.
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
	merged, err := mergeShared(confs)
	if err != nil {
		return conf, false, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
	}
	if merged == nil {
		return conf, false, nil
	}
	if conf, err = decodeShared[T](merged); err != nil {
		return conf, false, fmt.Errorf("inbound %s:%d (%v): %w", in.Address, in.Port, origins, err)
	}
	return conf, true, nil
}

// The plugins of every proxy decode the same few merged confs (the
// mesh-wide defaults, mostly), so the decoded confs and the merges of
// inbound confs are cached by their JSON text. The caches are keyed by
// content, so they are never stale; each is emptied when it reaches
// confCacheLimit entries.
const confCacheLimit = 4096

// confCache maps JSON text to what was computed from it.
type confCache[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func (c *confCache[V]) get(key []byte) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[string(key)]
	c.mu.RUnlock()
	return v, ok
}

func (c *confCache[V]) put(key []byte, v V) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= confCacheLimit {
		c.m = map[string]V{}
	}
	c.m[string(key)] = v
	c.mu.Unlock()
}

// decodedConfs holds a *confCache[any] per conf type.
var decodedConfs sync.Map

// decodeShared is policy.Decode[T] through a cache: callers decoding equal
// confs get copies of one T, which share what its pointers, slices and
// maps point to, so they must not modify it.
func decodeShared[T any](conf json.RawMessage) (T, error) {
	t := reflect.TypeFor[T]()
	c, ok := decodedConfs.Load(t)
	if !ok {
		c, _ = decodedConfs.LoadOrStore(t, &confCache[any]{})
	}
	cache := c.(*confCache[any])
	if v, ok := cache.get(conf); ok {
		return v.(T), nil
	}
	v, err := policy.Decode[T](conf)
	if err != nil {
		return v, err
	}
	cache.put(conf, v)
	return v, nil
}

// mergedConfs caches policy.Merge by its confs (each prefixed by its
// length in the key).
var mergedConfs confCache[json.RawMessage]

// mergeShared is policy.Merge through a cache; the result is shared, so
// callers must not modify it.
func mergeShared(confs []json.RawMessage) (json.RawMessage, error) {
	if len(confs) == 0 {
		return nil, nil
	}
	n := 0
	for _, c := range confs {
		n += len(c) + binary.MaxVarintLen64
	}
	key := make([]byte, 0, n)
	for _, c := range confs {
		key = binary.AppendUvarint(key, uint64(len(c)))
		key = append(key, c...)
	}
	if merged, ok := mergedConfs.get(key); ok {
		return merged, nil
	}
	merged, err := policy.Merge(confs...)
	if err != nil {
		return nil, err
	}
	mergedConfs.put(key, merged)
	return merged, nil
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
