package xdsclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

const nodeID = "default.backend-1"

// testPKI is a throwaway CA and a server certificate for localhost.
type testPKI struct {
	caFile    string
	serverTLS *tls.Config
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trellis test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testPKI{
		caFile: caFile,
		serverTLS: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
			MinVersion:   tls.VersionTLS12,
		},
	}
}

// recorder observes the requests the server receives.
type recorder struct {
	mu    sync.Mutex
	sotw  []*discoveryv3.DiscoveryRequest
	delta []*discoveryv3.DeltaDiscoveryRequest
}

func (r *recorder) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, req *discoveryv3.DiscoveryRequest) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.sotw = append(r.sotw, req)
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.delta = append(r.delta, req)
			return nil
		},
	}
}

// nacks returns the error messages of the NACKs received for a type.
func (r *recorder) nacks(typeURL string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, req := range r.sotw {
		if req.GetTypeUrl() == typeURL && req.GetErrorDetail() != nil {
			out = append(out, req.GetErrorDetail().GetMessage())
		}
	}
	for _, req := range r.delta {
		if req.GetTypeUrl() == typeURL && req.GetErrorDetail() != nil {
			out = append(out, req.GetErrorDetail().GetMessage())
		}
	}
	return out
}

// nackCodes returns the status codes of all NACKs received.
func (r *recorder) nackCodes() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int32
	for _, req := range r.sotw {
		if req.GetErrorDetail() != nil {
			out = append(out, req.GetErrorDetail().GetCode())
		}
	}
	for _, req := range r.delta {
		if req.GetErrorDetail() != nil {
			out = append(out, req.GetErrorDetail().GetCode())
		}
	}
	return out
}

// subscribed returns the names the client is subscribed to for a type as
// seen by the server: the last SotW request's names, or the delta
// subscribe/unsubscribe requests folded together.
func (r *recorder) subscribed(typeURL string) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for _, req := range r.sotw {
		if req.GetTypeUrl() == typeURL {
			out = map[string]bool{}
			for _, n := range req.GetResourceNames() {
				out[n] = true
			}
		}
	}
	for _, req := range r.delta {
		if req.GetTypeUrl() != typeURL {
			continue
		}
		for _, n := range req.GetResourceNamesSubscribe() {
			out[n] = true
		}
		for _, n := range req.GetResourceNamesUnsubscribe() {
			delete(out, n)
		}
	}
	return out
}

// controlPlane is a go-control-plane ADS server with TLS.
type controlPlane struct {
	t     *testing.T
	pki   *testPKI
	cache cachev3.SnapshotCache
	rec   *recorder
	addr  string
	gs    *grpc.Server
}

func newControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	cp := &controlPlane{
		t:     t,
		pki:   newPKI(t),
		cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil),
		rec:   &recorder{},
	}
	cp.start("127.0.0.1:0")
	t.Cleanup(cp.stop)
	return cp
}

// start serves on addr ("127.0.0.1:0" picks a port; later starts reuse it).
func (cp *controlPlane) start(addr string) {
	cp.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cp.t.Fatal(err)
	}
	cp.addr = ln.Addr().String()
	srv := serverv3.NewServer(context.Background(), cp.cache, cp.rec.callbacks())
	cp.gs = grpc.NewServer(grpc.Creds(credentials.NewTLS(cp.pki.serverTLS)))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(cp.gs, srv)
	go func() { _ = cp.gs.Serve(ln) }()
}

func (cp *controlPlane) stop() {
	if cp.gs != nil {
		cp.gs.Stop()
		cp.gs = nil
	}
}

func (cp *controlPlane) setSnapshot(version string, res ...types.Resource) {
	cp.t.Helper()
	cp.set(version, true, res)
}

// setSnapshotUnchecked sets a snapshot that may reference resources it
// lacks.
func (cp *controlPlane) setSnapshotUnchecked(version string, res ...types.Resource) {
	cp.t.Helper()
	cp.set(version, false, res)
}

func (cp *controlPlane) set(version string, check bool, res []types.Resource) {
	cp.t.Helper()
	byType := map[resourcev3.Type][]types.Resource{}
	for _, r := range res {
		u := resourceTypeURL(r)
		byType[u] = append(byType[u], r)
	}
	snap, err := cachev3.NewSnapshot(version, byType)
	if err != nil {
		cp.t.Fatal(err)
	}
	if err := snap.Consistent(); check && err != nil {
		cp.t.Fatalf("inconsistent test snapshot: %v", err)
	}
	if err := cp.cache.SetSnapshot(context.Background(), nodeID, snap); err != nil {
		cp.t.Fatal(err)
	}
}

func resourceTypeURL(r types.Resource) string {
	switch r.(type) {
	case *listenerv3.Listener:
		return resourcev3.ListenerType
	case *routev3.RouteConfiguration:
		return resourcev3.RouteType
	case *clusterv3.Cluster:
		return resourcev3.ClusterType
	case *endpointv3.ClusterLoadAssignment:
		return resourcev3.EndpointType
	case *tlsv3.Secret:
		return resourcev3.SecretType
	}
	panic("unexpected resource type")
}

// applier records the configs it is given and rejects those reject
// returns an error for.
type applier struct {
	mu      sync.Mutex
	configs []*xdsconfig.Config
	reject  func(*xdsconfig.Config) error
}

func (a *applier) Apply(_ context.Context, cfg *xdsconfig.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reject != nil {
		if err := a.reject(cfg); err != nil {
			return err
		}
	}
	a.configs = append(a.configs, cfg)
	return nil
}

// last returns the last accepted config (nil before the first).
func (a *applier) last() *xdsconfig.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.configs) == 0 {
		return nil
	}
	return a.configs[len(a.configs)-1]
}

func (a *applier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.configs)
}

// startClient runs a client against cp until the test ends.
func startClient(t *testing.T, cp *controlPlane, mode xdsclient.Mode, app *applier) *xdsclient.Client {
	t.Helper()
	return startClientWith(t, cp, mode, app, nil)
}

// startClientWith is startClient with a hook to adjust the options.
func startClientWith(t *testing.T, cp *controlPlane, mode xdsclient.Mode, app *applier, adjust func(*xdsclient.Options)) *xdsclient.Client {
	t.Helper()
	tlsCfg, err := xdsclient.TLSConfig(cp.pki.caFile, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	opts := xdsclient.Options{
		Address:     cp.addr,
		TLS:         tlsCfg,
		Node:        &corev3.Node{Id: nodeID, Cluster: "backend"},
		Mode:        mode,
		Applier:     app,
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  200 * time.Millisecond,
		Logger:      slog.New(slog.DiscardHandler),
	}
	if adjust != nil {
		adjust(&opts)
	}
	c, err := xdsclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Resource builders, shaped like the contract in docs/xds-contract.md.

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			ServiceName: name,
			EdsConfig: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				ResourceApiVersion:    corev3.ApiVersion_V3,
			},
		},
	}
}

func staticCluster(name string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       cla(name, port),
	}
}

func cla(name string, port uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: socketAddress("10.0.0.1", port),
				}},
			}},
		}},
	}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func httpListener(name string, port uint32, routeConfig string) *listenerv3.Listener {
	router, _ := anypb.New(&routerv3.Router{})
	hcm, _ := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeConfig,
			ConfigSource: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
				ResourceApiVersion:    corev3.ApiVersion_V3,
			},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	return &listenerv3.Listener{
		Name:    name,
		Address: socketAddress("127.0.0.1", port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
}

func routeConfig(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name: cluster, Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
			}},
		}},
	}
}
