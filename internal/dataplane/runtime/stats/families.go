package stats

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// FamilyOptions narrows what FamiliesWith returns, as Envoy's
// /stats/prometheus query parameters do.
type FamilyOptions struct {
	// UsedOnly leaves out counters that read zero and histograms without
	// observations (Envoy's ?usedonly; Envoy tracks a "used" flag,
	// trellis-dp approximates it by the value). Gauges are always kept: a
	// gauge at zero (no healthy host, disconnected) is news.
	UsedOnly bool
	// Filter, when set, keeps only the stats whose dotted name (such as
	// cluster.backend.upstream_rq_total) it matches (Envoy's ?filter=).
	Filter *regexp.Regexp
	// Select, when set, decides instead of Filter, from the dotted stat
	// name and its Prometheus name (MeshMetric's include/exclude selectors
	// match the latter).
	Select func(stat, promName string) bool
}

// Families returns every metric of the Store, the collectors' included,
// as Prometheus metric families named as Envoy names them in its
// /stats/prometheus output: "envoy_" + the dotted stat name with the
// cluster name, listener address, HTTP and TCP stat prefixes and the
// response code class pulled out into labels. So
// cluster.backend.upstream_rq_2xx becomes
// envoy_cluster_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="2"}.
// Every family has a HELP text and its type (counter, gauge, histogram
// in milliseconds with Envoy's default buckets). Families are sorted by
// name and their metrics by labels, so equal stores give equal output.
// It is the one place that names stats for Prometheus: the admin's
// /stats/prometheus, the MeshMetric endpoint and the metrics sent to the
// control plane all use it.
func (s *Store) Families() []*dto.MetricFamily { return s.FamiliesWith(FamilyOptions{}) }

// entry is one stat read from the Store.
type entry struct {
	name  string
	kind  Kind
	value uint64
	hist  HistogramValue
}

// read copies every stat out of the Store under its lock.
func (s *Store) read() []entry {
	s.mu.Lock()
	collectors := slices.Clone(s.collectors)
	out := make([]entry, 0, len(s.counters)+len(s.gauges)+len(s.histograms))
	for name, c := range s.counters {
		out = append(out, entry{name: name, kind: KindCounter, value: c.Value()})
	}
	for name, g := range s.gauges {
		out = append(out, entry{name: name, kind: KindGauge, value: uint64(max(g.Value(), 0))})
	}
	for name, h := range s.histograms {
		out = append(out, entry{name: name, kind: KindHistogram, hist: h.Value()})
	}
	s.mu.Unlock()
	out = append(out, externalAliases(out)...)
	for _, c := range collectors {
		for _, smp := range c.Samples() {
			out = append(out, entry{name: smp.Name, kind: smp.Kind, value: smp.Value})
		}
	}
	// Sorted so that, when two stats map to one series, the same one wins
	// every time.
	slices.SortFunc(out, func(a, b entry) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.kind, b.kind)) })
	return out
}

// FamiliesWith is Families narrowed by o.
func (s *Store) FamiliesWith(o FamilyOptions) []*dto.MetricFamily {
	fams := map[string]*dto.MetricFamily{}
	seen := map[string]bool{} // family name + labels
	for _, e := range s.read() {
		if o.Select == nil && o.Filter != nil && !o.Filter.MatchString(e.name) {
			continue
		}
		if o.UsedOnly && e.kind != KindGauge && e.value == 0 && e.hist.Count == 0 {
			continue
		}
		name, labels := PromName(e.name)
		if e.kind == KindGauge {
			// Prometheus reserves _total for counters (promtool refuses
			// it on gauges): Envoy's membership_total gauge is exported
			// as envoy_cluster_membership.
			name = strings.TrimSuffix(name, "_total")
		}
		if o.Select != nil && !o.Select(e.name, name) {
			continue
		}
		fam, ok := fams[name]
		if !ok {
			fam = &dto.MetricFamily{Name: proto.String(name), Help: proto.String(Help(name, e.kind)), Type: promType(e.kind).Enum()}
			fams[name] = fam
		} else if fam.GetType() != promType(e.kind) {
			continue // a stat of another type under the same name: the first wins
		}
		key := name + labelKey(labels)
		if seen[key] {
			continue
		}
		seen[key] = true
		fam.Metric = append(fam.Metric, metricOf(e, labels))
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		slices.SortFunc(f.Metric, func(a, b *dto.Metric) int { return cmp.Compare(labelKey(a.Label), labelKey(b.Label)) })
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

func promType(k Kind) dto.MetricType {
	switch k {
	case KindGauge:
		return dto.MetricType_GAUGE
	case KindHistogram:
		return dto.MetricType_HISTOGRAM
	default:
		return dto.MetricType_COUNTER
	}
}

func metricOf(e entry, labels []*dto.LabelPair) *dto.Metric {
	m := &dto.Metric{Label: labels}
	switch e.kind {
	case KindGauge:
		m.Gauge = &dto.Gauge{Value: proto.Float64(float64(e.value))}
	case KindHistogram:
		h := &dto.Histogram{SampleCount: proto.Uint64(e.hist.Count), SampleSum: proto.Float64(e.hist.SumMillis)}
		for i, ub := range DefaultBuckets {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(ub), CumulativeCount: proto.Uint64(e.hist.Cumulative[i])})
		}
		m.Histogram = h
	default:
		m.Counter = &dto.Counter{Value: proto.Float64(float64(e.value))}
	}
	return m
}

func labelKey(labels []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

// tagRule pulls one label out of a stat name, as Envoy's tag extractors
// do: the first submatch is cut from the name, the second is the label's
// value.
type tagRule struct {
	label string
	re    *regexp.Regexp
}

// tagRules are Envoy's default tag extractors that trellis-dp's stat
// names need, in Envoy's order.
var tagRules = []tagRule{
	{"envoy_cluster_name", regexp.MustCompile(`^cluster\.(([^.]+)\.)`)},
	{"envoy_listener_address", regexp.MustCompile(`^listener\.((\d+\.\d+\.\d+\.\d+_\d+|\[[^\]]*\]_\d+|[^.]+)\.)`)},
	{"envoy_http_conn_manager_prefix", regexp.MustCompile(`^http\.(([^.]+)\.)`)},
	{"envoy_tcp_prefix", regexp.MustCompile(`^tcp\.((.+)\.)[^.]+$`)},
}

// codeClass matches the response code class of a counter such as
// upstream_rq_2xx; the digit becomes a label and the name ends in _rq_xx.
var codeClass = regexp.MustCompile(`_rq_(\d)xx$`)

// networkRBAC matches the stats of a network RBAC filter,
// <stat_prefix>.rbac.<metric>: the prefix (an inbound listener's name)
// becomes the envoy_rbac_prefix label, so the family is envoy_rbac_<metric>
// whatever the listener, as Kuma's dashboards query it.
var networkRBAC = regexp.MustCompile(`^((.+)\.)rbac\.[^.]+$`)

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// PromName turns a dotted stat name into the Prometheus metric name and
// labels (sorted by name) that Envoy gives it. Label values are sanitized
// as Envoy sanitizes stat names (':' becomes '_').
func PromName(stat string) (string, []*dto.LabelPair) {
	var labels []*dto.LabelPair
	for _, r := range tagRules {
		if m := r.re.FindStringSubmatchIndex(stat); m != nil {
			labels = append(labels, &dto.LabelPair{Name: proto.String(r.label), Value: proto.String(Sanitize(stat[m[4]:m[5]]))})
			stat = stat[:m[2]] + stat[m[3]:]
		}
	}
	if !strings.HasPrefix(stat, "http.") {
		if m := networkRBAC.FindStringSubmatchIndex(stat); m != nil {
			labels = append(labels, &dto.LabelPair{Name: proto.String("envoy_rbac_prefix"), Value: proto.String(Sanitize(stat[m[4]:m[5]]))})
			stat = stat[:m[2]] + stat[m[3]:]
		}
	}
	if m := codeClass.FindStringSubmatchIndex(stat); m != nil {
		labels = append(labels, &dto.LabelPair{Name: proto.String("envoy_response_code_class"), Value: proto.String(stat[m[2]:m[3]])})
		stat = stat[:m[2]] + stat[m[3]:]
	}
	slices.SortFunc(labels, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return "envoy_" + invalidNameChars.ReplaceAllString(stat, "_"), labels
}

// upstreamClass matches a cluster's upstream_rq_<N>xx counter.
var upstreamClass = regexp.MustCompile(`^(cluster\.[^.]+\.)(upstream_rq_[1-5]xx)$`)

// externalAliases repeats every cluster.<c>.upstream_rq_<N>xx counter as
// cluster.<c>.external_upstream_rq_<N>xx: Envoy counts requests not
// marked x-envoy-internal there too, and trellis-dp treats every request
// as external (Kuma's dashboards read the external series).
func externalAliases(entries []entry) []entry {
	var out []entry
	for _, e := range entries {
		if e.kind != KindCounter {
			continue
		}
		if m := upstreamClass.FindStringSubmatch(e.name); m != nil {
			out = append(out, entry{name: m[1] + "external_" + m[2], kind: KindCounter, value: e.value})
		}
	}
	return out
}
