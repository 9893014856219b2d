package proxystats

import (
	"encoding/json"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func counter(name string, value float64, labels ...string) *dto.MetricFamily {
	t := dto.MetricType_COUNTER
	m := &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(value)}}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
	}
	return &dto.MetricFamily{Name: proto.String(name), Type: &t, Metric: []*dto.Metric{m}}
}

// cluster returns the service-map counters of one cluster as trellis-dp
// names them.
func cluster(name string, total, fivexx, cx float64) []*dto.MetricFamily {
	return []*dto.MetricFamily{
		counter("envoy_cluster_upstream_rq_total", total, "envoy_cluster_name", name),
		counter("envoy_cluster_upstream_rq_xx", fivexx, "envoy_cluster_name", name, "envoy_response_code_class", "5"),
		counter("envoy_cluster_upstream_rq_xx", total-fivexx, "envoy_cluster_name", name, "envoy_response_code_class", "2"),
		counter("envoy_cluster_upstream_cx_total", cx, "envoy_cluster_name", name),
	}
}

func join(fs ...[]*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestStore() (*Store, *clock) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := New(30 * time.Second)
	s.now = c.now
	return s, c
}

var services = []ServiceNode{
	{Name: "frontend", Dataplanes: DataplaneCount{Total: 2, Online: 2}},
	{Name: "backend", Dataplanes: DataplaneCount{Total: 1, Online: 1}},
	{Name: "db", Dataplanes: DataplaneCount{Total: 1, Offline: 1}},
}

// Rates are counter differences over the window, summed over the proxies
// of a source service; subset clusters count for their service; inbound,
// localhost and unknown clusters are not edges.
func TestServiceMap(t *testing.T) {
	s, c := newTestStore()
	f1, f2 := Key{"default", "frontend-1"}, Key{"default", "frontend-2"}
	s.Record(f1, []string{"frontend"}, join(cluster("backend", 100, 0, 5), cluster("localhost_8080", 50, 0, 1), cluster("ads_cluster", 1, 0, 1)))
	s.Record(f2, []string{"frontend"}, join(cluster("backend-1a2b3c4d", 10, 0, 1)))
	s.Record(Key{"other", "x"}, []string{"frontend"}, cluster("backend", 1000, 0, 1))
	c.t = c.t.Add(10 * time.Second)
	s.Record(f1, []string{"frontend"}, join(cluster("backend", 130, 3, 6), cluster("db", 5, 5, 1)))
	s.Record(f2, []string{"frontend"}, join(cluster("backend-1a2b3c4d", 30, 0, 2), cluster("backend-zz", 9, 0, 9)))

	got := s.ServiceMap("default", services)
	js, _ := json.Marshal(got)
	want := `{"mesh":"default","window":"30s","updated":"2026-01-02T03:04:15Z",` +
		`"services":[{"name":"backend","dataplanes":{"total":1,"online":1,"offline":0}},{"name":"db","dataplanes":{"total":1,"online":0,"offline":1}},{"name":"frontend","dataplanes":{"total":2,"online":2,"offline":0}}],` +
		`"edges":[{"source":"frontend","destination":"backend","requestsPerSecond":5,"errorRate":0.06,"requests":50,"connectionsPerSecond":0.2},` +
		`{"source":"frontend","destination":"db","requestsPerSecond":0.5,"errorRate":1,"requests":5,"connectionsPerSecond":0.1}]}`
	if string(js) != want {
		t.Fatalf("got  %s\nwant %s", js, want)
	}
}

// A single sample gives no rate yet; a proxy quiet for longer than the
// window drops out; a counter reset counts from zero.
func TestServiceMapEdgeCases(t *testing.T) {
	s, c := newTestStore()
	k := Key{"default", "frontend-1"}
	s.Record(k, []string{"frontend"}, cluster("backend", 100, 0, 1))
	if e := s.ServiceMap("default", services).Edges; len(e) != 1 || e[0].RequestsPerSecond != 0 || e[0].Requests != 0 {
		t.Fatalf("one sample: %+v", e)
	}
	c.t = c.t.Add(5 * time.Second)
	s.Record(k, []string{"frontend"}, cluster("backend", 20, 0, 1)) // the proxy restarted
	if e := s.ServiceMap("default", services).Edges; len(e) != 1 || e[0].Requests != 20 || e[0].RequestsPerSecond != 4 {
		t.Fatalf("after a reset: %+v", e)
	}
	c.t = c.t.Add(31 * time.Second)
	if e := s.ServiceMap("default", services).Edges; len(e) != 0 {
		t.Fatalf("a quiet proxy still has edges: %+v", e)
	}
}

// Samples older than the window are dropped, but the newest of them stays
// as the baseline; Envoy's own metric and label spellings are understood.
func TestRecordKeepsTheWindowAndReadsEnvoyNames(t *testing.T) {
	s, c := newTestStore()
	k := Key{"default", "frontend-1"}
	for i := range 10 {
		s.Record(k, []string{"frontend"}, []*dto.MetricFamily{
			counter("cluster.upstream_rq_total", float64(i*10), "envoy.cluster_name", "backend"),
		})
		c.t = c.t.Add(10 * time.Second)
	}
	samples := s.Samples(k)
	if len(samples) != 5 || samples[0].Clusters["backend"].Requests != 50 || samples[len(samples)-1].Clusters["backend"].Requests != 90 {
		t.Fatalf("samples %+v", samples)
	}
	s.Forget(k)
	if len(s.Samples(k)) != 0 {
		t.Fatal("Forget kept samples")
	}
}
