package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// xDS type URLs, in the order a new stream subscribes (as trellis-dp does:
// clusters, then listeners; the others follow what those reference).
const (
	cdsType = resourcev3.ClusterType
	edsType = resourcev3.EndpointType
	ldsType = resourcev3.ListenerType
	rdsType = resourcev3.RouteType
	sdsType = resourcev3.SecretType
)

// wildcardTypes are subscribed to in full; refTypes by the names the
// accepted listeners and clusters reference.
var (
	wildcardTypes = []string{cdsType, ldsType}
	refTypes      = []string{edsType, rdsType, sdsType}
)

var (
	hcmTypeURL        = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
	upstreamTLSType   = "type.googleapis.com/" + string((&tlsv3.UpstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
	downstreamTLSType = "type.googleapis.com/" + string((&tlsv3.DownstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
)

// watch is a change the fleet waits for: a response of typeURL with a
// resource whose bytes contain marker, ACKed. Proxies record when they
// ACKed it in at[index].
type watch struct {
	typeURL string
	marker  []byte
	at      []atomic.Int64 // unix nanoseconds, 0 until seen
	left    atomic.Int64   // affected proxies that have not ACKed yet
	done    chan struct{}
}

// see records that proxy i ACKed the watched change.
func (w *watch) see(i int, now time.Time) {
	if w.at[i].CompareAndSwap(0, now.UnixNano()) && w.left.Add(-1) == 0 {
		close(w.done)
	}
}

// proxy is one simulated data-plane proxy: one ADS stream, subscribing
// and ACKing as trellis-dp does.
type proxy struct {
	index int
	fleet *fleet
	node  *corev3.Node
	delta bool
	// affected says whether a watch concerns this proxy (set before the
	// watch is published).
	affected atomic.Bool

	started    time.Time
	firstResp  atomic.Int64 // unix nanoseconds of the first response
	configured atomic.Int64 // unix nanoseconds of the first full config

	// Stream state, owned by the stream's goroutine.
	raw      map[string]map[string][]byte // wildcard type → name → resource bytes
	have     map[string]map[string]bool   // reference type → names received
	want     map[string]map[string]bool   // reference type → names referenced
	told     map[string]map[string]bool   // reference type → names subscribed
	nonce    map[string]string            // SotW: last nonce per type
	version  map[string]string            // SotW: last accepted version per type
	ackedAll map[string]bool              // wildcard types with a first response
	nodeSent bool
}

func newProxy(f *fleet, index int, node *corev3.Node, delta bool) *proxy {
	p := &proxy{index: index, fleet: f, node: node, delta: delta,
		raw: map[string]map[string][]byte{}, have: map[string]map[string]bool{},
		want: map[string]map[string]bool{}, told: map[string]map[string]bool{},
		nonce: map[string]string{}, version: map[string]string{}, ackedAll: map[string]bool{}}
	for _, t := range wildcardTypes {
		p.raw[t] = map[string][]byte{}
	}
	for _, t := range refTypes {
		p.have[t], p.want[t], p.told[t] = map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	return p
}

// run opens the proxy's stream and serves it until ctx ends.
func (p *proxy) run(ctx context.Context, conn *grpc.ClientConn) error {
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	p.started = time.Now()
	if p.delta {
		return p.runDelta(ctx, ads)
	}
	return p.runSotW(ctx, ads)
}

func (p *proxy) runSotW(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) error {
	stream, err := ads.StreamAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(64<<20))
	if err != nil {
		return fmt.Errorf("opening the ADS stream: %w", err)
	}
	for _, t := range wildcardTypes {
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: p.node, TypeUrl: t}); err != nil {
			return fmt.Errorf("ADS stream: %w", err)
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return ctxOr(ctx, fmt.Errorf("ADS stream: %w", err))
		}
		t := resp.GetTypeUrl()
		names := make([]string, 0, len(resp.GetResources()))
		values := make([][]byte, 0, len(resp.GetResources()))
		for _, a := range resp.GetResources() {
			name, value, err := resourceName(t, a)
			if err != nil {
				return err
			}
			names, values = append(names, name), append(values, value)
		}
		if err := p.accept(t, names, values, nil, true); err != nil {
			return err
		}
		p.nonce[t], p.version[t] = resp.GetNonce(), resp.GetVersionInfo()
		ack := &discoveryv3.DiscoveryRequest{Node: p.node, TypeUrl: t, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if _, ok := p.told[t]; ok {
			ack.ResourceNames = sortedNames(p.told[t])
		}
		if err := stream.Send(ack); err != nil {
			return ctxOr(ctx, fmt.Errorf("ADS stream: %w", err))
		}
		p.afterACK(t, values)
		for _, rt := range refTypes {
			if equalSets(p.want[rt], p.told[rt]) {
				continue
			}
			p.told[rt] = cloneSet(p.want[rt])
			req := &discoveryv3.DiscoveryRequest{Node: p.node, TypeUrl: rt, VersionInfo: p.version[rt],
				ResponseNonce: p.nonce[rt], ResourceNames: sortedNames(p.told[rt])}
			if err := stream.Send(req); err != nil {
				return ctxOr(ctx, fmt.Errorf("ADS stream: %w", err))
			}
		}
	}
}

func (p *proxy) runDelta(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) error {
	stream, err := ads.DeltaAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(64<<20))
	if err != nil {
		return fmt.Errorf("opening the delta ADS stream: %w", err)
	}
	send := func(req *discoveryv3.DeltaDiscoveryRequest) error {
		if !p.nodeSent {
			req.Node, p.nodeSent = p.node, true
		}
		if err := stream.Send(req); err != nil {
			return ctxOr(ctx, fmt.Errorf("delta ADS stream: %w", err))
		}
		return nil
	}
	for _, t := range wildcardTypes {
		if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			return err
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return ctxOr(ctx, fmt.Errorf("delta ADS stream: %w", err))
		}
		t := resp.GetTypeUrl()
		names := make([]string, 0, len(resp.GetResources()))
		values := make([][]byte, 0, len(resp.GetResources()))
		for _, r := range resp.GetResources() {
			name, value, err := resourceName(t, r.GetResource())
			if err != nil {
				return err
			}
			if r.GetName() != "" {
				name = r.GetName()
			}
			names, values = append(names, name), append(values, value)
		}
		if err := p.accept(t, names, values, resp.GetRemovedResources(), false); err != nil {
			return err
		}
		if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		p.afterACK(t, values)
		for _, rt := range refTypes {
			add, drop := minus(p.want[rt], p.told[rt]), minus(p.told[rt], p.want[rt])
			if len(add) == 0 && len(drop) == 0 {
				continue
			}
			p.told[rt] = cloneSet(p.want[rt])
			if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: rt, ResourceNamesSubscribe: add, ResourceNamesUnsubscribe: drop}); err != nil {
				return err
			}
		}
	}
}

// accept records a response: the wildcard types' resources (replacing all
// of them for a SotW response) and the names received of the others, then
// recomputes what the listeners and clusters reference. Only resources
// whose bytes changed are decoded again.
func (p *proxy) accept(t string, names []string, values [][]byte, removed []string, fullState bool) error {
	if raw, ok := p.raw[t]; ok {
		seen := map[string]bool{}
		for i, name := range names {
			seen[name] = true
			if !bytes.Equal(raw[name], values[i]) {
				raw[name] = values[i]
			}
		}
		for _, name := range removed {
			delete(raw, name)
		}
		if fullState {
			for name := range raw {
				if !seen[name] {
					delete(raw, name)
				}
			}
		}
		p.ackedAll[t] = true
		return p.references()
	}
	have, ok := p.have[t]
	if !ok {
		return fmt.Errorf("unexpected type %s", t)
	}
	if fullState {
		clear(have)
	}
	for _, name := range names {
		have[name] = true
	}
	for _, name := range removed {
		delete(have, name)
	}
	return nil
}

// references recomputes the names the accepted listeners and clusters
// reference: EDS service names, RDS route configurations, SDS secrets.
func (p *proxy) references() error {
	eds, rds, sds := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for name, b := range p.raw[cdsType] {
		refs, err := p.fleet.refs.get(cdsType, b)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
		addAll(eds, refs.eds)
		addAll(sds, refs.sds)
	}
	for name, b := range p.raw[ldsType] {
		refs, err := p.fleet.refs.get(ldsType, b)
		if err != nil {
			return fmt.Errorf("listener %s: %w", name, err)
		}
		addAll(rds, refs.rds)
		addAll(sds, refs.sds)
	}
	p.want[edsType], p.want[rdsType], p.want[sdsType] = eds, rds, sds
	return nil
}

// afterACK notes the first full config and the watched change.
func (p *proxy) afterACK(t string, values [][]byte) {
	now := time.Now()
	p.fleet.responses.Add(1)
	p.firstResp.CompareAndSwap(0, now.UnixNano())
	if p.configured.Load() == 0 && p.complete() {
		p.configured.Store(now.UnixNano())
		p.fleet.noteConfigured()
	}
	w := p.fleet.watch.Load()
	if w == nil || w.typeURL != t || !p.affected.Load() || w.at[p.index].Load() != 0 {
		return
	}
	for _, v := range values {
		if bytes.Contains(v, w.marker) {
			w.see(p.index, now)
			return
		}
	}
}

// complete reports whether the proxy has every resource its config needs.
func (p *proxy) complete() bool {
	for _, t := range wildcardTypes {
		if !p.ackedAll[t] {
			return false
		}
	}
	for _, t := range refTypes {
		for name := range p.want[t] {
			if !p.have[t][name] {
				return false
			}
		}
	}
	return true
}

// resourceName returns the name and bytes of a resource of a response,
// unwrapping a discovery Resource wrapper.
func resourceName(typeURL string, a *anypb.Any) (string, []byte, error) {
	if a == nil {
		return "", nil, fmt.Errorf("a %s response carries an empty resource", typeURL)
	}
	if a.GetTypeUrl() != typeURL {
		return "", nil, fmt.Errorf("a %s response carries a %s", typeURL, a.GetTypeUrl())
	}
	name, err := nameOf(typeURL, a.GetValue())
	return name, a.GetValue(), err
}

// nameOf reads field 1 (the name, or cluster_name for endpoints) of a
// serialized resource without decoding the rest.
func nameOf(typeURL string, b []byte) (string, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				break
			}
			return string(v), nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			break
		}
		b = b[m:]
	}
	return "", fmt.Errorf("a %s resource without a name", typeURL)
}

// refs are the names one listener or cluster references.
type refs struct {
	eds, rds, sds []string
}

// refCache decodes each distinct listener or cluster once, fleet-wide:
// proxies of one service receive identical clusters, and SotW responses
// repeat unchanged resources.
type refCache struct {
	mu sync.Mutex
	// byType maps a type URL to serialized resources and their references.
	byType map[string]map[string]*refs
}

func (c *refCache) get(typeURL string, b []byte) (*refs, error) {
	c.mu.Lock()
	if c.byType == nil {
		c.byType = map[string]map[string]*refs{cdsType: {}, ldsType: {}}
	}
	m := c.byType[typeURL]
	r := m[string(b)]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var err error
	if typeURL == cdsType {
		r, err = clusterRefs(b)
	} else {
		r, err = listenerRefs(b)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(m) > 200000 {
		clear(m)
	}
	m[string(b)] = r
	c.mu.Unlock()
	return r, nil
}

func clusterRefs(b []byte) (*refs, error) {
	var c clusterv3.Cluster
	if err := proto.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	r := &refs{}
	if c.GetType() == clusterv3.Cluster_EDS {
		r.eds = append(r.eds, cmpOr(c.GetEdsClusterConfig().GetServiceName(), c.GetName()))
	}
	var utc tlsv3.UpstreamTlsContext
	if unpack(c.GetTransportSocket().GetTypedConfig(), upstreamTLSType, &utc) {
		r.sds = append(r.sds, secretRefs(utc.GetCommonTlsContext())...)
	}
	return r, nil
}

func listenerRefs(b []byte) (*refs, error) {
	var l listenerv3.Listener
	if err := proto.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	r := &refs{}
	chains := slices.Clone(l.GetFilterChains())
	if fc := l.GetDefaultFilterChain(); fc != nil {
		chains = append(chains, fc)
	}
	for _, fc := range chains {
		var dtc tlsv3.DownstreamTlsContext
		if unpack(fc.GetTransportSocket().GetTypedConfig(), downstreamTLSType, &dtc) {
			r.sds = append(r.sds, secretRefs(dtc.GetCommonTlsContext())...)
		}
		for _, f := range fc.GetFilters() {
			var hcm hcmv3.HttpConnectionManager
			if unpack(f.GetTypedConfig(), hcmTypeURL, &hcm) && hcm.GetRds().GetRouteConfigName() != "" {
				r.rds = append(r.rds, hcm.GetRds().GetRouteConfigName())
			}
		}
	}
	return r, nil
}

// secretRefs returns the SDS secrets of a TLS context loaded over ADS.
func secretRefs(ctx *tlsv3.CommonTlsContext) []string {
	var out []string
	all := append(slices.Clone(ctx.GetTlsCertificateSdsSecretConfigs()),
		ctx.GetValidationContextSdsSecretConfig(),
		ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
	for _, s := range all {
		if s.GetSdsConfig().GetAds() != nil && s.GetName() != "" {
			out = append(out, s.GetName())
		}
	}
	return out
}

func unpack(a *anypb.Any, typeURL string, m proto.Message) bool {
	return a != nil && a.GetTypeUrl() == typeURL && proto.Unmarshal(a.GetValue(), m) == nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func addAll(set map[string]bool, names []string) {
	for _, n := range names {
		set[n] = true
	}
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func cloneSet(s map[string]bool) map[string]bool {
	out := make(map[string]bool, len(s))
	for k := range s {
		out[k] = true
	}
	return out
}

// minus returns the names of a not in b, sorted.
func minus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func sortedNames(s map[string]bool) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ctxOr returns ctx's error once it ended (a stream closed on purpose),
// else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
