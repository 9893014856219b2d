package xdsclient_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
)

// refusingADS records the authorization metadata of each stream and
// refuses it, as a control plane does with a bad token.
type refusingADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	seen chan []string
}

func (s *refusingADS) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	select {
	case s.seen <- md.Get("authorization"):
	default:
	}
	return status.Error(codes.Unauthenticated, "invalid dataplane token")
}

// The token file is read at every connect: a renewed token is sent on the
// next stream.
func TestTokenFileIsSentAndReread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ads := &refusingADS{seen: make(chan []string, 16)}
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, ads)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := xdsclient.New(xdsclient.Options{
		Address: ln.Addr().String(), Node: &corev3.Node{Id: nodeID}, Applier: &applier{},
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Token: xdsclient.TokenFile(file),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	next := func() []string {
		select {
		case v := <-ads.seen:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("no stream within 10 s")
			return nil
		}
	}
	if got := next(); len(got) != 1 || got[0] != "Bearer first-token" {
		t.Fatalf("authorization = %q", got)
	}
	if err := os.WriteFile(file, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := next()
		if len(got) == 1 && got[0] == "Bearer second-token" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed token was not sent: %q", got)
		}
	}
}
