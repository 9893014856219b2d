package tracing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Kind is the kind of the spans of a connection manager.
type Kind uint8

// Span kinds: an outbound listener's connection manager makes client
// spans, an inbound's server spans.
const (
	KindServer Kind = iota
	KindClient
)

var localService atomic.Pointer[string]

// SetLocalService sets the service name of client spans (Envoy's
// --service-cluster, the bootstrap's node.cluster).
func SetLocalService(name string) { localService.Store(&name) }

func localServiceName() string {
	if p := localService.Load(); p != nil && *p != "" {
		return *p
	}
	return "trellis-dp"
}

// Tracer is a compiled HttpConnectionManager.tracing, immutable once
// built.
type Tracer struct {
	kind                    Kind
	service                 string // "" : localServiceName()
	overall, client, random float64
	literal                 []Tag
	headerTags              []headerTag
	exp                     *exporter
	dropped                 *stats.Counter
}

// Tag is a span tag.
type Tag struct{ Key, Value string }

type headerTag struct{ tag, header, def string }

// Resolver returns the address (host:port) of a collector cluster.
type Resolver func(cluster string) (string, error)

// Build compiles the tracing of a connection manager whose spans are of
// kind; service names the local service of server spans ("" : the
// proxy's). Exporters are shared by every tracer with the same collector.
func Build(t *hcmv3.HttpConnectionManager_Tracing, kind Kind, service string, resolve Resolver, reg stats.Registry) (*Tracer, error) {
	tr := &Tracer{kind: kind, service: service}
	var err error
	if tr.overall, err = pct(t.GetOverallSampling(), "overall_sampling"); err != nil {
		return nil, err
	}
	if tr.client, err = pct(t.GetClientSampling(), "client_sampling"); err != nil {
		return nil, err
	}
	if tr.random, err = pct(t.GetRandomSampling(), "random_sampling"); err != nil {
		return nil, err
	}
	if s := t.GetSpawnUpstreamSpan(); s != nil && s.GetValue() {
		return nil, errors.New("spawn_upstream_span: true is not supported by trellis-dp")
	}
	for i, ct := range t.GetCustomTags() {
		switch {
		case ct.GetLiteral() != nil:
			tr.literal = append(tr.literal, Tag{ct.GetTag(), ct.GetLiteral().GetValue()})
		case ct.GetRequestHeader() != nil:
			h := ct.GetRequestHeader()
			tr.headerTags = append(tr.headerTags, headerTag{ct.GetTag(), strings.ToLower(h.GetName()), h.GetDefaultValue()})
		default:
			return nil, fmt.Errorf("custom_tags[%d]: only literal and request_header tags are supported", i)
		}
	}
	p := t.GetProvider()
	if p == nil {
		return nil, errors.New("provider is required")
	}
	if tr.exp, err = buildExporter(p, resolve, reg); err != nil {
		return nil, fmt.Errorf("provider (%q): %w", p.GetName(), err)
	}
	tr.dropped = reg.Counter("tracing." + tr.exp.kind + ".spans_dropped")
	return tr, nil
}

func pct(p *typev3.Percent, field string) (float64, error) {
	if p == nil {
		return 100, nil
	}
	if v := p.GetValue(); v < 0 || v > 100 {
		return 0, fmt.Errorf("%s: %v is not between 0 and 100", field, v)
	}
	return p.GetValue(), nil
}

func buildExporter(p *tracev3.Tracing_Http, resolve Resolver, reg stats.Registry) (*exporter, error) {
	tc := p.GetTypedConfig()
	if tc == nil {
		return nil, errors.New("typed_config is required")
	}
	msg, err := tc.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	switch c := msg.(type) {
	case *tracev3.ZipkinConfig:
		if c.GetCollectorEndpointVersion() != tracev3.ZipkinConfig_HTTP_JSON {
			return nil, fmt.Errorf("collector_endpoint_version %s is not supported (HTTP_JSON only)", c.GetCollectorEndpointVersion())
		}
		addr, err := resolve(c.GetCollectorCluster())
		if err != nil {
			return nil, fmt.Errorf("collector_cluster: %w", err)
		}
		host := c.GetCollectorHostname()
		if host == "" {
			host = addr
		}
		return sharedExporter(formatZipkin, addr, host, c.GetCollectorEndpoint(), c.GetTraceId_128Bit(), "zipkin", "", reg), nil
	case *tracev3.OpenTelemetryConfig:
		if c.GetGrpcService() != nil {
			return nil, errors.New("grpc_service is not supported by trellis-dp (http_service: OTLP/HTTP)")
		}
		uri := c.GetHttpService().GetHttpUri()
		if uri == nil {
			return nil, errors.New("http_service.http_uri is required")
		}
		addr, err := resolve(uri.GetCluster())
		if err != nil {
			return nil, fmt.Errorf("http_service.http_uri.cluster: %w", err)
		}
		host, path, err := splitURI(uri.GetUri())
		if err != nil {
			return nil, fmt.Errorf("http_service.http_uri.uri: %w", err)
		}
		return sharedExporter(formatOTLP, addr, host, path, true, "opentelemetry", c.GetServiceName(), reg), nil
	}
	return nil, fmt.Errorf("typed_config %s is not a supported tracer", tc.GetTypeUrl())
}

// splitURI splits http://host/path.
func splitURI(u string) (host, path string, err error) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return "", "", fmt.Errorf("%q: only http:// URIs are supported", u)
	}
	host, path, _ = strings.Cut(rest, "/")
	return host, "/" + path, nil
}

// Span is one request's span; Finish ends it. A Span that is not sampled
// still propagates its context.
type Span struct {
	tr      *Tracer
	Context SpanContext
	parent  SpanID
	start   time.Time
	name    string
	tags    []Tag
}

// Start begins the span of a request that arrived with the headers get
// reads, at start. It returns the span whose context goes upstream.
func (t *Tracer) Start(get Getter, start time.Time) *Span {
	sp := &Span{tr: t, start: start}
	in, ok := Extract(get)
	sc := SpanContext{Sampled: in.Sampled, B3Single: in.B3Single}
	if ok {
		sc.TraceID, sp.parent = in.TraceID, in.SpanID
		sc.ParentID = in.SpanID
	} else {
		randomID(sc.TraceID[:])
	}
	randomID(sc.SpanID[:])
	if sc.Sampled == SamplingUnset {
		p := t.random
		if _, client := get(HeaderClientTrace); client {
			p = t.client
		}
		sc.Sampled = decide(p)
	}
	if sc.Sampled == SamplingYes && t.overall < 100 && decide(t.overall) == SamplingNo {
		sc.Sampled = SamplingNo
	}
	sp.Context = sc
	if sc.Sampled == SamplingYes {
		for _, h := range t.headerTags {
			v, ok := get(h.header)
			if !ok || v == "" {
				v = h.def
			}
			if v != "" {
				sp.tags = append(sp.tags, Tag{h.tag, v})
			}
		}
	}
	return sp
}

// randomID fills an id with random bytes, never all zero.
func randomID(b []byte) {
	for {
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		for _, c := range b {
			if c != 0 {
				return
			}
		}
	}
}

func decide(p float64) Sampling {
	if p >= 100 || p > 0 && rand.Float64()*100 < p {
		return SamplingYes
	}
	return SamplingNo
}

// Sampled reports whether the span is reported.
func (s *Span) Sampled() bool { return s.Context.Sampled == SamplingYes }

// Result is what is known about a request when its span ends.
type Result struct {
	Method, Authority, Path, Protocol string
	Status                            int
	Flags                             string
	UpstreamCluster, UpstreamHost     string
	DownstreamRemote                  string
	RequestSize, ResponseSize         int64
}

// Finish ends the span and queues it for export (never blocking).
func (s *Span) Finish(r *Result, end time.Time) {
	if !s.Sampled() {
		return
	}
	t := s.tr
	tags := make([]Tag, 0, len(t.literal)+len(s.tags)+10)
	tags = append(tags, Tag{"component", "proxy"}, Tag{"http.method", r.Method},
		Tag{"http.url", "http://" + r.Authority + r.Path}, Tag{"http.protocol", r.Protocol},
		Tag{"http.status_code", itoa(r.Status)}, Tag{"upstream_cluster", r.UpstreamCluster},
		Tag{"peer.address", r.DownstreamRemote}, Tag{"request_size", itoa(int(r.RequestSize))},
		Tag{"response_size", itoa(int(r.ResponseSize))})
	if r.UpstreamHost != "" {
		tags = append(tags, Tag{"upstream_address", r.UpstreamHost})
	}
	if r.Flags != "" {
		tags = append(tags, Tag{"response_flags", r.Flags})
	}
	if r.Status == 0 || r.Status >= 500 {
		tags = append(tags, Tag{"error", "true"})
	}
	tags = append(tags, t.literal...)
	tags = append(tags, s.tags...)
	svc := t.service
	if t.kind == KindClient || svc == "" {
		svc = localServiceName()
	}
	if t.exp.serviceName != "" && t.kind == KindClient {
		svc = t.exp.serviceName
	}
	name := r.Authority + r.Path
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	if !t.exp.offer(&finished{
		ctx: s.Context, parent: s.parent, name: name, kind: t.kind,
		start: s.start, duration: end.Sub(s.start), service: svc, tags: tags,
	}) {
		t.dropped.Inc()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// WithKind returns a copy of the tracer whose spans are of kind k.
func (t *Tracer) WithKind(k Kind) *Tracer {
	c := *t
	c.kind = k
	return &c
}
