package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

type cp struct {
	mgr    *manager.Manager
	addr   string
	caFile string
}

// startCP runs a DP server on a memory store with the default mesh. Tests
// not about authentication run it with authn none; opts change the config.
func startCP(t *testing.T, dereg time.Duration, opts ...func(*server.Config)) *cp {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	ctx, cancel := context.WithCancel(context.Background())
	if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := server.EnsureServerCert(filepath.Join(t.TempDir(), "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, InstanceID: "cp-1",
		DeregistrationDelay: dereg, Debounce: 10 * time.Millisecond, SingleInstance: true, Authn: server.AuthnNone}
	for _, o := range opts {
		o(&cfg)
	}
	s := server.New(cfg, mgr, log)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return &cp{mgr: mgr, addr: ln.Addr().String(), caFile: certFile}
}

func (c *cp) dial(t *testing.T, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (c *cp) apply(t *testing.T, doc string) {
	t.Helper()
	res, err := c.mgr.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.mgr.Apply(context.Background(), res); err != nil {
		t.Fatal(err)
	}
}

func dpNode(t *testing.T, name string, port int) *corev3.Node {
	t.Helper()
	dp, _ := json.Marshal(map[string]any{
		"type": "Dataplane", "mesh": "default", "name": name,
		"networking": map[string]any{
			"address":  "127.0.0.1",
			"inbound":  []any{map[string]any{"port": port, "tags": map[string]any{"kuma.io/service": "backend", "kuma.io/protocol": "http"}}},
			"outbound": []any{map[string]any{"port": 10001, "tags": map[string]any{"kuma.io/service": "backend"}}},
		},
	})
	meta, _ := structpb.NewStruct(map[string]any{server.MetaDataplane: string(dp)})
	return &corev3.Node{Id: "default." + name, Metadata: meta}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A proxy that connects is registered, gets its listeners, shows online
// with its ACKed version and its NACK, and is deregistered after it leaves.
func TestRegistrationInsightsAndDeregistration(t *testing.T) {
	c := startCP(t, 300*time.Millisecond)
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := dpNode(t, "backend-1", 18080)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, a := range resp.Resources {
		var l listenerv3.Listener
		if err := a.UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		names[l.Name] = true
	}
	if !names["inbound:127.0.0.1:18080"] || !names["outbound:127.0.0.1:10001"] {
		t.Fatalf("listeners %v", names)
	}
	dpDesc, _ := c.mgr.Registry().ByKind(kinds.Dataplane)
	if _, err := c.mgr.Get(ctx, dpDesc, "default", "backend-1"); err != nil {
		t.Fatalf("the Dataplane was not registered: %v", err)
	}
	// NACK, then ACK.
	stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce,
		ErrorDetail: &statuspb.Status{Code: 3, Message: "field x is not supported"}})
	stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo})
	st := c.mgr.Store()
	waitFor(t, "the insight to show the ACK and the NACK", func() bool {
		in, err := insights.Get(ctx, st, "default", "backend-1")
		if err != nil || !in.Online() || !in.RegisteredByProxy {
			return false
		}
		s := in.Last().Status
		return s.LastACKedVersion == resp.VersionInfo && s.LastNACK != nil && s.LastNACK.Error == "field x is not supported"
	})
	// Leaving: offline, then deregistered after the delay.
	cancel()
	waitFor(t, "the insight to show offline", func() bool {
		in, err := insights.Get(context.Background(), st, "default", "backend-1")
		return err == nil && len(in.Subscriptions) > 0 && !in.Online()
	})
	waitFor(t, "deregistration", func() bool {
		_, err := c.mgr.Get(context.Background(), dpDesc, "default", "backend-1")
		return err != nil
	})
}

// A Dataplane created through the API survives its proxy's departure.
func TestAPICreatedDataplaneStays(t *testing.T) {
	c := startCP(t, 100*time.Millisecond)
	c.apply(t, "type: Dataplane\nname: api-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 18081\n    tags: {kuma.io/service: backend}\n")
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	stream, _ := ads.StreamAggregatedResources(ctx)
	stream.Send(&discoveryv3.DiscoveryRequest{Node: dpNode(t, "api-1", 18081), TypeUrl: resourcev3.ListenerType})
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(600 * time.Millisecond)
	dpDesc, _ := c.mgr.Registry().ByKind(kinds.Dataplane)
	if _, err := c.mgr.Get(context.Background(), dpDesc, "default", "api-1"); err != nil {
		t.Fatalf("an API-created Dataplane was removed: %v", err)
	}
}

// A new endpoint reaches a connected proxy, without a new request.
func TestChangesArePushed(t *testing.T) {
	c := startCP(t, time.Minute)
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, _ := ads.StreamAggregatedResources(ctx)
	node := dpNode(t, "web-1", 18082)
	stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"backend"}})
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"backend"}, ResponseNonce: first.Nonce, VersionInfo: first.VersionInfo})
	c.apply(t, "type: Dataplane\nname: backend-9\nmesh: default\nnetworking:\n  address: 127.0.0.9\n  inbound:\n  - port: 9000\n    tags: {kuma.io/service: backend, kuma.io/protocol: http}\n")
	got := make(chan *discoveryv3.DiscoveryResponse, 1)
	go func() {
		r, err := stream.Recv()
		if err == nil {
			got <- r
		}
	}()
	select {
	case r := <-got:
		if r.VersionInfo == first.VersionInfo {
			t.Fatal("pushed the same version")
		}
		if len(fmt.Sprint(r.Resources)) == 0 {
			t.Fatal("empty push")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new endpoint was not pushed within 5 s")
	}
}

func TestNodeWithoutIdentityIsRefused(t *testing.T) {
	c := startCP(t, time.Minute)
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	stream, _ := ads.StreamAggregatedResources(context.Background())
	stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "nobody"}, TypeUrl: resourcev3.ListenerType})
	if _, err := stream.Recv(); err == nil {
		t.Fatal("a node without a Dataplane was served")
	}
	_ = net.IPv4len
}
