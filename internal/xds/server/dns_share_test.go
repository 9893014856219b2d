package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/vip"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// dnsPortIn returns the port of the DNS listener of an output (0: none).
func dnsPortIn(t *testing.T, o *output) uint32 {
	t.Helper()
	for _, it := range o[0] {
		if it.name != build.DNSListenerName {
			continue
		}
		var l listenerv3.Listener
		b, err := proto.Marshal(it.res)
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l.GetAddress().GetSocketAddress().GetPortValue()
	}
	return 0
}

// The DNS port a proxy announces is an input of its output: a new port
// (a reconnect with another --dns-port, the model otherwise unchanged)
// rebuilds it, the same port reuses it.
func TestDNSPortIsAnInput(t *testing.T) {
	ctx := context.Background()
	mgr := manager.New(memory.New(), kinds.Registry())
	apply(t, mgr, "type: Mesh\nname: default\n")
	apply(t, mgr, extraDataplane("backend-1", "backend", "10.0.0.2"))
	apply(t, mgr, "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: web\n  transparentProxying:\n    redirectPortInbound: 15006\n    redirectPortOutbound: 15001\n")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache := newMeshCache(mgr)
	cache.vips = vip.New(mgr.Store(), vip.DefaultConfig(), log)
	ms, err := cache.load(ctx, ca.New(mgr, log), "default")
	if err != nil {
		t.Fatal(err)
	}
	memo := newOutputMemo()
	ps := newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: "web-1"}, dnsPort: 15053})
	first, _, err := sidecarOutput(ms, memo, ps)
	if err != nil {
		t.Fatal(err)
	}
	if got := dnsPortIn(t, first); got != 15053 {
		t.Fatalf("DNS listener on port %d, want 15053", got)
	}
	if again, _, _ := sidecarOutput(ms, memo, ps); again != first {
		t.Fatal("an unchanged proxy was rebuilt")
	}
	ps.node.Store(&nodeInfo{key: proxyKey{Mesh: "default", Name: "web-1"}, dnsPort: 15054})
	moved, _, err := sidecarOutput(ms, memo, ps)
	if err != nil {
		t.Fatal(err)
	}
	if got := dnsPortIn(t, moved); got != 15054 {
		t.Fatalf("DNS listener on port %d after the port changed, want 15054", got)
	}
	ps.node.Store(&nodeInfo{key: proxyKey{Mesh: "default", Name: "web-1"}})
	if off, _, _ := sidecarOutput(ms, memo, ps); dnsPortIn(t, off) != 0 {
		t.Fatal("a DNS listener without a DNS port")
	}
}
