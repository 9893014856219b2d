package metricssink

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// recorder is a metrics service that keeps what it receives; it ends every
// stream after endAfter messages (0: never) and refuses streams without
// the token "t".
type recorder struct {
	metricsv3.UnimplementedMetricsServiceServer
	endAfter int
	mu       sync.Mutex
	streams  [][]*metricsv3.StreamMetricsMessage
	tokens   []string
}

func (r *recorder) StreamMetrics(s metricsv3.MetricsService_StreamMetricsServer) error {
	md, _ := metadata.FromIncomingContext(s.Context())
	r.mu.Lock()
	r.tokens = append(r.tokens, md.Get("authorization")...)
	r.streams = append(r.streams, nil)
	i := len(r.streams) - 1
	r.mu.Unlock()
	if len(md.Get("authorization")) == 0 {
		return status.Error(codes.Unauthenticated, "no token")
	}
	for n := 1; ; n++ {
		msg, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&metricsv3.StreamMetricsResponse{})
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.streams[i] = append(r.streams[i], msg)
		r.mu.Unlock()
		if r.endAfter > 0 && n >= r.endAfter {
			return s.SendAndClose(&metricsv3.StreamMetricsResponse{})
		}
	}
}

func (r *recorder) snapshot() [][]*metricsv3.StreamMetricsMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]*metricsv3.StreamMetricsMessage, len(r.streams))
	for i := range r.streams {
		out[i] = append([]*metricsv3.StreamMetricsMessage(nil), r.streams[i]...)
	}
	return out
}

func serve(t *testing.T, r *recorder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	metricsv3.RegisterMetricsServiceServer(gs, r)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

func families() []*dto.MetricFamily {
	c := dto.MetricType_COUNTER
	return []*dto.MetricFamily{{Name: proto.String("envoy_cluster_upstream_rq_total"), Type: &c,
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(3)}}}}}
}

// The sink flushes every interval; each stream starts with the node, and a
// stream the control plane ends is reopened.
func TestSinkStreamsAndReconnects(t *testing.T) {
	r := &recorder{endAfter: 3}
	addr := serve(t, r)
	node := &corev3.Node{Id: "default.web-1"}
	s, err := New(Options{Address: addr, Node: node, Interval: 20 * time.Millisecond, Families: families,
		Token: func() (string, error) { return "t", nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.snapshot()) < 2 || len(r.snapshot()[1]) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("streams: %d", len(r.snapshot()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	for i, msgs := range r.snapshot()[:2] {
		for j, m := range msgs {
			if hasNode := m.GetIdentifier().GetNode().GetId() == "default.web-1"; hasNode != (j == 0) {
				t.Errorf("stream %d message %d: identifier %v", i, j, m.GetIdentifier())
			}
			if len(m.GetEnvoyMetrics()) != 1 {
				t.Errorf("stream %d message %d: %d families", i, j, len(m.GetEnvoyMetrics()))
			}
		}
	}
	if r.tokens[0] != "Bearer t" {
		t.Errorf("authorization %q", r.tokens[0])
	}
}

// A refused stream is retried with backoff, and Run returns when its
// context ends even while the control plane refuses it.
func TestSinkRetriesARefusal(t *testing.T) {
	r := &recorder{}
	addr := serve(t, r)
	s, err := New(Options{Address: addr, Node: &corev3.Node{Id: "x"}, Interval: 20 * time.Millisecond, Families: families})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.Run(ctx)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Run took %v after its context ended", time.Since(start))
	}
	if n := len(r.snapshot()); n < 2 {
		t.Fatalf("%d attempts, want retries", n)
	}
}

func TestNewNamesWhatIsMissing(t *testing.T) {
	for _, o := range []Options{
		{Node: &corev3.Node{}, Interval: time.Second, Families: families},
		{Address: "a:1", Node: &corev3.Node{}, Families: families},
		{Address: "a:1", Node: &corev3.Node{}, Interval: time.Second},
		{Address: "a:1", Interval: time.Second, Families: families},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
