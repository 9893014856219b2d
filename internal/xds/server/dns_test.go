package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/vip"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

// tproxyNode is a transparent proxy of service web announcing a DNS port.
func tproxyNode(t *testing.T, name string, dnsPort any) *corev3.Node {
	t.Helper()
	dp, _ := json.Marshal(map[string]any{
		"type": "Dataplane", "mesh": "default", "name": name,
		"networking": map[string]any{
			"address":             "127.0.0.1",
			"inbound":             []any{map[string]any{"port": 18090, "tags": map[string]any{"kuma.io/service": "web"}}},
			"transparentProxying": map[string]any{"redirectPortInbound": 15006, "redirectPortOutbound": 15001},
		},
	})
	fields := map[string]any{server.MetaDataplane: string(dp)}
	if dnsPort != nil {
		fields[server.MetaDNSPort] = dnsPort
	}
	meta, err := structpb.NewStruct(fields)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: "default." + name, Metadata: meta}
}

// dnsTable returns the DNS listener's address and its names → addresses,
// from a listener response (nil when there is no DNS listener).
func dnsTable(t *testing.T, resp *discoveryv3.DiscoveryResponse) (string, map[string]string) {
	t.Helper()
	for _, a := range resp.Resources {
		var l listenerv3.Listener
		if err := a.UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		if l.Name != "kuma:dns" {
			continue
		}
		var cfg dnsfilterv3.DnsFilterConfig
		if err := l.ListenerFilters[0].GetTypedConfig().UnmarshalTo(&cfg); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, d := range cfg.GetServerConfig().GetInlineDnsTable().GetVirtualDomains() {
			out[d.Name] = strings.Join(d.GetEndpoint().GetAddressList().GetAddress(), ",")
		}
		sa := l.Address.GetSocketAddress()
		return fmt.Sprintf("%s %s:%d", sa.Protocol, sa.Address, sa.GetPortValue()), out
	}
	return "", nil
}

// A transparent proxy that announces a DNS port gets the DNS listener on
// it, with the VIPs the control plane allocated (and stored); another
// stream announcing another port gets it there; a bad port is refused.
func TestDNSListenerFollowsNodeMetadata(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, "type: Dataplane\nname: backend-1\nmesh: default\nnetworking:\n  address: 127.0.0.2\n  inbound:\n  - port: 9000\n    tags: {kuma.io/service: backend}\n")
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	// until returns the first listener response whose DNS listener is at
	// want (any response when want is empty), ACKing the others.
	until := func(node *corev3.Node, want string, names ...string) (*discoveryv3.DiscoveryResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		stream, err := ads.StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
			t.Fatal(err)
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				return nil, err
			}
			addr, table := dnsTable(t, resp)
			missing := false
			for _, n := range names {
				missing = missing || table[n] == ""
			}
			if (want == "" || addr == want) && !missing {
				return resp, nil
			}
			stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo})
		}
	}
	first := func(node *corev3.Node) (*discoveryv3.DiscoveryResponse, error) { return until(node, "") }
	resp, err := first(tproxyNode(t, "web-1", "15053"))
	if err != nil {
		t.Fatal(err)
	}
	addr, table := dnsTable(t, resp)
	if addr != "UDP 127.0.0.1:15053" {
		t.Fatalf("DNS listener at %q, want UDP 127.0.0.1:15053", addr)
	}
	rec, err := c.mgr.Store().Get(context.Background(), store.Key{Kind: vip.Kind, Mesh: "default", Name: vip.RecordName})
	if err != nil {
		t.Fatalf("no stored VIPs: %v", err)
	}
	var stored struct {
		VIPs map[string]struct{ IP string } `json:"vips"`
	}
	if err := json.Unmarshal(rec.Spec, &stored); err != nil {
		t.Fatal(err)
	}
	backend := stored.VIPs["backend"].IP
	if backend == "" || !strings.HasPrefix(table["backend.mesh"], backend+",fd00:fd00::") {
		t.Fatalf("backend.mesh → %q, stored %v", table["backend.mesh"], stored.VIPs)
	}
	if !strings.HasPrefix(table["web.mesh"], "240.") {
		t.Fatalf("web.mesh → %q", table["web.mesh"])
	}

	if _, err := until(tproxyNode(t, "web-1", float64(15054)), "UDP 127.0.0.1:15054"); err != nil {
		t.Fatalf("no DNS listener on the new port within 5 s: %v", err)
	}
	resp, err = first(tproxyNode(t, "web-2", nil))
	if err != nil {
		t.Fatal(err)
	}
	if addr, _ := dnsTable(t, resp); addr != "" {
		t.Fatalf("a proxy announcing no DNS port got a DNS listener at %s", addr)
	}
	if _, err := first(tproxyNode(t, "web-3", "dns")); err == nil {
		t.Fatal("a node with dataplane.dns.port \"dns\" was served")
	}
}

// A new service's VIP reaches a connected transparent proxy on its open
// stream (its inputs' fingerprint covers the VIP table); the other VIPs
// stay.
func TestNewServiceReachesConnectedProxy(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, "type: Dataplane\nname: backend-1\nmesh: default\nnetworking:\n  address: 127.0.0.2\n  inbound:\n  - port: 9000\n    tags: {kuma.io/service: backend}\n")
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := tproxyNode(t, "web-1", "15053")
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	var first map[string]string
	for first["backend.mesh"] == "" {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		_, first = dnsTable(t, resp)
		stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo})
	}
	c.apply(t, "type: Dataplane\nname: redis-1\nmesh: default\nnetworking:\n  address: 127.0.0.3\n  inbound:\n  - port: 6379\n    tags: {kuma.io/service: redis}\n")
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("redis.mesh was not pushed: %v", err)
		}
		_, table := dnsTable(t, resp)
		if table["redis.mesh"] != "" {
			if table["backend.mesh"] != first["backend.mesh"] {
				t.Fatalf("backend.mesh is %q with a new service, was %q", table["backend.mesh"], first["backend.mesh"])
			}
			return
		}
		stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo})
	}
}

// A bootstrap request with kuma-dp's dnsPort puts the port into the node
// metadata (dataplane.dns.port), as Kuma's control plane does.
func TestBootstrapCarriesTheDNSPort(t *testing.T) {
	c := startCP(t, time.Minute)
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, Timeout: 10 * time.Second}
	dp := `{"type":"Dataplane","mesh":"default","name":"web-1","networking":{"address":"127.0.0.1","inbound":[{"port":18095,"tags":{"kuma.io/service":"web"}}],"transparentProxying":{}}}`
	for port, want := range map[uint32]string{15053: "15053", 0: ""} {
		body, _ := json.Marshal(server.BootstrapRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", DataplaneResource: dp, DNSPort: port})
		resp, err := hc.Post("https://"+c.addr+"/bootstrap", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var b bootstrapv3.Bootstrap
		if err := protojson.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		if got := b.GetNode().GetMetadata().GetFields()[server.MetaDNSPort].GetStringValue(); got != want {
			t.Errorf("dnsPort %d: node metadata %s = %q, want %q", port, server.MetaDNSPort, got, want)
		}
	}
}
