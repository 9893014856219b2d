package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"
)

// gRPC-Go's own xDS resolver (target xds:///greeter) resolves and calls a
// gRPC service registered in the mesh, through what the control plane
// serves: an independent client of our xDS.
func TestProxylessGRPCClient(t *testing.T) {
	c := startCP(t, time.Minute)

	// The greeter: a real gRPC server answering the health service.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("greeter", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	port := ln.Addr().(*net.TCPAddr).Port
	c.apply(t, fmt.Sprintf("type: Dataplane\nname: greeter-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: %d\n    tags: {kuma.io/service: greeter, kuma.io/protocol: grpc}\n", port))

	bootstrap, _ := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      c.addr,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": map[string]any{"ca_certificate_file": c.caFile}}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id":       "proxyless-client-1",
			"metadata": map[string]any{"trellis.io/proxyless": true, "trellis.io/mesh": "default"},
		},
	})
	builder, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "greeter"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("calling through the xDS resolver: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.Status)
	}
}
