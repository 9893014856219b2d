package xdsclient_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// wrongTypeServer answers the first CDS request with a Listener and
// reports the request that answers it.
type wrongTypeServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	answer chan *discoveryv3.DiscoveryRequest
}

func (s *wrongTypeServer) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	l, _ := anypb.New(&listenerv3.Listener{Name: "not-a-cluster"})
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if req.GetTypeUrl() != xdsconfig.ClusterType {
			continue
		}
		if req.GetResponseNonce() == "" {
			if err := stream.Send(&discoveryv3.DiscoveryResponse{
				VersionInfo: "1", TypeUrl: xdsconfig.ClusterType, Nonce: "n1", Resources: []*anypb.Any{l},
			}); err != nil {
				return err
			}
			continue
		}
		s.answer <- req
	}
}

func TestResourceOfTheWrongTypeIsNACKed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &wrongTypeServer{answer: make(chan *discoveryv3.DiscoveryRequest, 10)}
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	app := &applier{}
	c, err := xdsclient.New(xdsclient.Options{
		Address: ln.Addr().String(),
		Node:    &corev3.Node{Id: nodeID},
		Applier: app,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case req := <-srv.answer:
		if req.GetErrorDetail() == nil {
			t.Fatalf("a Listener in a CDS response was ACKed: %v", req)
		}
		if msg := req.GetErrorDetail().GetMessage(); !strings.Contains(msg, "envoy.config.listener.v3.Listener") {
			t.Errorf("NACK message = %q, want it to name the wrong type", msg)
		}
		if req.GetResponseNonce() != "n1" || req.GetVersionInfo() != "" {
			t.Errorf("NACK nonce, version = %q, %q; want n1 and the previous (empty) version", req.GetResponseNonce(), req.GetVersionInfo())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the CDS response")
	}
	if app.count() != 0 {
		t.Errorf("the Applier was called %d times for an undecodable response", app.count())
	}
}
