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
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	jwtcreds "google.golang.org/grpc/credentials/jwt"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/tokens"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

func withTokens(c *server.Config) { c.Authn = server.AuthnDPToken }

func (c *cp) token(t *testing.T, id tokens.DataplaneIdentity) string {
	t.Helper()
	tok, err := tokens.NewDataplaneTokens(c.mgr.Store()).IssueDataplaneToken(context.Background(), id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func serviceToken(service string) tokens.DataplaneIdentity {
	return tokens.DataplaneIdentity{Mesh: "default", Tags: map[string][]string{"kuma.io/service": {service}}}
}

// withToken puts a token in the stream's metadata, as trellis-dp does.
func withToken(ctx context.Context, tok string) context.Context {
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// firstResponse opens a SotW stream with tok, sends one request for node
// and returns the first answer or the stream's error.
func (c *cp) firstResponse(t *testing.T, tok string, node *corev3.Node, typeURL string, names ...string) (*discoveryv3.DiscoveryResponse, error) {
	t.Helper()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithTimeout(withToken(context.Background(), tok), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names}); err != nil {
		t.Fatal(err)
	}
	return stream.Recv()
}

func wantUnauthenticated(t *testing.T, err error, says string) {
	t.Helper()
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), says) {
		t.Fatalf("err = %v, want Unauthenticated saying %q", err, says)
	}
}

// The ADS stream takes the token from the authorization metadata and
// checks it against the Dataplane the node presents.
func TestStreamNeedsAMatchingToken(t *testing.T) {
	c := startCP(t, time.Minute, withTokens)
	node := dpNode(t, "backend-1", 18090)

	_, err := c.firstResponse(t, "", node, resourcev3.ListenerType)
	wantUnauthenticated(t, err, "no token presented")

	_, err = c.firstResponse(t, c.token(t, serviceToken("payments")), node, resourcev3.ListenerType)
	wantUnauthenticated(t, err, "kuma.io/service=backend")

	_, err = c.firstResponse(t, "garbage", node, resourcev3.ListenerType)
	wantUnauthenticated(t, err, "malformed")

	named := c.token(t, tokens.DataplaneIdentity{Name: "backend-2", Mesh: "default"})
	_, err = c.firstResponse(t, named, node, resourcev3.ListenerType)
	wantUnauthenticated(t, err, "name mismatch")

	dpDesc := c.mgr.Registry()
	d, _ := dpDesc.ByKind("Dataplane")
	if _, err := c.mgr.Get(context.Background(), d, "default", "backend-1"); err == nil {
		t.Fatal("a refused proxy registered its Dataplane")
	}

	resp, err := c.firstResponse(t, c.token(t, serviceToken("backend")), node, resourcev3.ListenerType)
	if err != nil || len(resp.Resources) == 0 {
		t.Fatalf("a good token: %v, %v", resp, err)
	}
	if _, err := c.mgr.Get(context.Background(), d, "default", "backend-1"); err != nil {
		t.Fatalf("not registered: %v", err)
	}
}

func TestDeltaStreamNeedsAToken(t *testing.T) {
	c := startCP(t, time.Minute, withTokens)
	node := dpNode(t, "backend-1", 18091)
	open := func(tok string) error {
		ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
		ctx, cancel := context.WithTimeout(withToken(context.Background(), tok), 10*time.Second)
		defer cancel()
		stream, err := ads.DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		return err
	}
	wantUnauthenticated(t, open(""), "no token presented")
	if err := open(c.token(t, serviceToken("backend"))); err != nil {
		t.Fatal(err)
	}
}

// A proxyless gRPC client needs a token of its mesh; name and tags are not
// checked (it presents no Dataplane).
func TestProxylessNeedsAMeshToken(t *testing.T) {
	c := startCP(t, time.Minute, withTokens)
	meta, _ := structpb.NewStruct(map[string]any{server.MetaProxyless: true, server.MetaMesh: "default"})
	node := &corev3.Node{Id: "proxyless-1", Metadata: meta}

	_, err := c.firstResponse(t, "", node, resourcev3.ListenerType, "greeter")
	wantUnauthenticated(t, err, "no token presented")

	c.apply(t, "type: Mesh\nname: other\n")
	other := c.token(t, tokens.DataplaneIdentity{Mesh: "other"})
	_, err = c.firstResponse(t, other, node, resourcev3.ListenerType, "greeter")
	wantUnauthenticated(t, err, "mesh mismatch")

	c.apply(t, "type: Dataplane\nname: greeter-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 18092\n    tags: {kuma.io/service: greeter, kuma.io/protocol: grpc}\n")
	if _, err := c.firstResponse(t, c.token(t, tokens.DataplaneIdentity{Mesh: "default"}), node, resourcev3.ListenerType, "greeter"); err != nil {
		t.Fatalf("a mesh token: %v", err)
	}

	// gRPC's own JWT call credentials (what its xDS bootstrap's call_creds
	// jwt_token_file uses) send the token the way the server reads it.
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(c.token(t, tokens.DataplaneIdentity{Mesh: "default"})), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := jwtcreds.NewTokenFileCallCredentials(file)
	if err != nil {
		t.Fatal(err)
	}
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t, grpc.WithPerRPCCredentials(creds)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"greeter"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("with gRPC's JWT call credentials: %v", err)
	}
}

// POST /bootstrap answers 401 with the reason when the token is missing or
// does not match.
func TestBootstrapNeedsAMatchingToken(t *testing.T) {
	c := startCP(t, time.Minute, withTokens)
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, Timeout: 10 * time.Second}
	dp := `{"type":"Dataplane","mesh":"default","name":"backend-1","networking":{"address":"127.0.0.1","inbound":[{"port":18093,"tags":{"kuma.io/service":"backend"}}]}}`
	post := func(tok string) (int, string) {
		body, _ := json.Marshal(server.BootstrapRequest{Mesh: "default", Name: "backend-1", ProxyType: "dataplane", DataplaneResource: dp, DataplaneToken: tok})
		resp, err := hc.Post("https://"+c.addr+"/bootstrap", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for tok, want := range map[string]string{
		"":                                      "no token presented",
		c.token(t, serviceToken("payments")):    "the Dataplane has kuma.io/service=backend, the token allows only kuma.io/service=payments",
		c.token(t, serviceToken("backend"))[1:]: "invalid dataplane token",
	} {
		code, body := post(tok)
		var se struct {
			Type, Detail string
			Status       int
		}
		_ = json.Unmarshal([]byte(body), &se)
		if code != http.StatusUnauthorized || se.Status != 401 || se.Type != "/std-errors" || !strings.Contains(se.Detail, want) {
			t.Errorf("token %.10q: %d %s, want 401 saying %q", tok, code, body, want)
		}
	}
	if code, body := post(c.token(t, serviceToken("backend"))); code != http.StatusOK {
		t.Fatalf("a good token: %d %s", code, body)
	}
}
