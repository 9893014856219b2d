package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

// A bootstrap request without dataplaneResource (kuma-dp on Kubernetes)
// gets the stored Dataplane's bootstrap, or 404 naming it while it does not
// exist.
func TestBootstrapOfAStoredDataplane(t *testing.T) {
	c := startCP(t, time.Minute)
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, Timeout: 10 * time.Second}
	post := func() (int, string) {
		body, _ := json.Marshal(server.BootstrapRequest{Mesh: "default", Name: "web-1.team-a", ProxyType: "dataplane"})
		resp, err := hc.Post("https://"+c.addr+"/bootstrap", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post()
	if code != http.StatusNotFound || !strings.Contains(body, `Dataplane \"web-1.team-a\" does not exist in mesh \"default\"`) {
		t.Fatalf("before the Dataplane exists: %d %s, want 404 naming it", code, body)
	}
	c.apply(t, `{"type":"Dataplane","mesh":"default","name":"web-1.team-a","networking":{"address":"10.0.0.7","inbound":[{"port":8080,"tags":{"kuma.io/service":"web_team-a_svc_80"}}]}}`)
	code, body = post()
	if code != http.StatusOK {
		t.Fatalf("after: %d %s", code, body)
	}
	var b struct {
		Node struct {
			ID       string         `json:"id"`
			Cluster  string         `json:"cluster"`
			Metadata map[string]any `json:"metadata"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	dp, _ := b.Node.Metadata[server.MetaDataplane].(string)
	if stored, _ := b.Node.Metadata[server.MetaDataplaneStored].(bool); !stored {
		t.Errorf("metadata %s not set: %v", server.MetaDataplaneStored, b.Node.Metadata)
	}
	if b.Node.ID != "default.web-1.team-a" || b.Node.Cluster != "web_team-a_svc_80" || !strings.Contains(dp, "10.0.0.7") {
		t.Fatalf("bootstrap node: %+v", b.Node)
	}
}

// A proxy bootstrapped from the stored Dataplane does not write its
// metadata's (older) Dataplane back when it connects.
func TestStoredIdentityIsNotWrittenBack(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, "type: Dataplane\nname: backend-1\nmesh: default\nnetworking:\n  address: 127.0.0.9\n  inbound:\n  - port: 18085\n    tags: {kuma.io/service: backend}\n")
	node := dpNode(t, "backend-1", 18085) // address 127.0.0.1: what the store said at bootstrap
	node.Metadata.Fields[server.MetaDataplaneStored] = structpb.NewBoolValue(true)
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	dpDesc, _ := c.mgr.Registry().ByKind(kinds.Dataplane)
	res, err := c.mgr.Get(ctx, dpDesc, "default", "backend-1")
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(res.Spec); !strings.Contains(string(js), "127.0.0.9") {
		t.Fatalf("the stored Dataplane was overwritten: %s", js)
	}
}
