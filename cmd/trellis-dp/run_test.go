package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

const testDataplane = `type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: 127.0.0.1
  inbound:
  - port: 10000
    servicePort: 8080
    tags:
      kuma.io/service: backend
`

// fakeCP serves POST /bootstrap and ADS on one TLS port, like trellis-cp's
// DP server.
type fakeCP struct {
	srv    *httptest.Server
	cache  cachev3.SnapshotCache
	caFile string

	mu       sync.Mutex
	requests []bootstrap.Request
	refuse   bool
	// authz lists the authorization metadata of each ADS stream.
	authz []string
}

// recordAuthz keeps the authorization metadata of every stream opened.
func (cp *fakeCP) recordAuthz(ctx context.Context, _ int64, _ string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	cp.mu.Lock()
	cp.authz = append(cp.authz, strings.Join(md.Get("authorization"), ","))
	cp.mu.Unlock()
	return nil
}

func newFakeCP(t *testing.T, apiType corev3.ApiConfigSource_ApiType) *fakeCP {
	t.Helper()
	cp := &fakeCP{cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)}
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(context.Background(), cp.cache,
		serverv3.CallbackFuncs{StreamOpenFunc: cp.recordAuthz, DeltaStreamOpenFunc: cp.recordAuthz}))
	cp.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		cp.bootstrap(t, w, r, apiType)
	}))
	cp.srv.EnableHTTP2 = true
	cp.srv.StartTLS()
	t.Cleanup(func() {
		cp.srv.CloseClientConnections()
		cp.srv.Close()
		gs.Stop()
	})
	cp.caFile = filepath.Join(t.TempDir(), "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cp.srv.Certificate().Raw})
	if err := os.WriteFile(cp.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

func (cp *fakeCP) bootstrap(t *testing.T, w http.ResponseWriter, r *http.Request, apiType corev3.ApiConfigSource_ApiType) {
	var req bootstrap.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("bootstrap request: %v", err)
	}
	cp.mu.Lock()
	cp.requests = append(cp.requests, req)
	refuse := cp.refuse
	cp.mu.Unlock()
	if refuse {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"type":"/std-errors","status":400,"title":"Bad Request","detail":"the bootstrap request is not valid",
			"invalid_parameters":[{"field":"dataplaneResource.networking.inbound[0].port","reason":"must be in inclusive range [1, 65535]"}]}`)
		return
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: req.Mesh + "." + req.Name, Cluster: "backend"},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
			ApiType: apiType, TransportApiVersion: corev3.ApiVersion_V3,
		}},
	}
	js, _ := protojson.Marshal(b)
	_, _ = w.Write(js)
}

func (cp *fakeCP) setSnapshot(t *testing.T, version string, res ...types.Resource) {
	t.Helper()
	byType := map[resourcev3.Type][]types.Resource{}
	for _, r := range res {
		switch r.(type) {
		case *listenerv3.Listener:
			byType[resourcev3.ListenerType] = append(byType[resourcev3.ListenerType], r)
		case *clusterv3.Cluster:
			byType[resourcev3.ClusterType] = append(byType[resourcev3.ClusterType], r)
		case *endpointv3.ClusterLoadAssignment:
			byType[resourcev3.EndpointType] = append(byType[resourcev3.EndpointType], r)
		}
	}
	snap, err := cachev3.NewSnapshot(version, byType)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.cache.SetSnapshot(context.Background(), "default.backend-1", snap); err != nil {
		t.Fatal(err)
	}
}

// echoServer answers each line with the same line.
func echoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func socketAddress(port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// tcpService is an outbound tcp_proxy listener to an EDS cluster whose one
// endpoint is upstream.
func tcpService(t *testing.T, listenPort uint32, upstream *net.TCPAddr) []types.Resource {
	t.Helper()
	tcp, err := anypb.New(&tcpv3.TcpProxy{StatPrefix: "backend", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "backend"}})
	if err != nil {
		t.Fatal(err)
	}
	ads := &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
	return []types.Resource{
		&listenerv3.Listener{
			Name:    "outbound:127.0.0.1:" + strconv.Itoa(int(listenPort)),
			Address: socketAddress(listenPort),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tcp},
			}}}},
		},
		&clusterv3.Cluster{
			Name:                 "backend",
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads, ServiceName: "backend"},
			ConnectTimeout:       durationpb.New(time.Second),
		},
		&endpointv3.ClusterLoadAssignment{
			ClusterName: "backend",
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(uint32(upstream.Port))}},
			}}}},
		},
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunProxiesAndQuits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apiType corev3.ApiConfigSource_ApiType
		flag    string
		pprof   bool
	}{
		{"sotw from the bootstrap", corev3.ApiConfigSource_GRPC, "", false},
		{"delta from the bootstrap", corev3.ApiConfigSource_DELTA_GRPC, "", false},
		{"delta from the flag, with pprof", corev3.ApiConfigSource_GRPC, "delta", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newFakeCP(t, tc.apiType)
			port := freePort(t)
			cp.setSnapshot(t, "1", tcpService(t, port, echoServer(t))...)
			o := &runOptions{
				cpAddress:        cp.srv.URL,
				dataplaneFile:    writeFile(t, "dp.yaml", testDataplane),
				dataplaneVars:    []string{"name=backend-1"},
				tokenFile:        writeFile(t, "token", "  the-token\n"),
				caCertFile:       cp.caFile,
				adminAddr:        "127.0.0.1:0",
				xdsMode:          tc.flag,
				drainTimeout:     time.Second,
				bootstrapTimeout: 5 * time.Second,
				enablePprof:      tc.pprof,
			}
			started := make(chan string, 1)
			done := make(chan error, 1)
			go func() { done <- run(context.Background(), o, slog.New(slog.DiscardHandler), started) }()
			var adminAddr string
			select {
			case adminAddr = <-started:
			case err := <-done:
				t.Fatalf("run: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the admin server did not start")
			}
			base := "http://" + adminAddr

			deadline := time.Now().Add(10 * time.Second)
			for {
				code, body := httpGet(t, base+"/ready")
				if code == http.StatusOK && body == "LIVE\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/ready = %d %q", code, body)
				}
				time.Sleep(20 * time.Millisecond)
			}

			wantPprof := http.StatusNotFound
			if tc.pprof {
				wantPprof = http.StatusOK
			}
			if code, _ := httpGet(t, base+"/debug/pprof/"); code != wantPprof {
				t.Errorf("/debug/pprof/ = %d, want %d", code, wantPprof)
			}

			cp.mu.Lock()
			req := cp.requests[0]
			cp.mu.Unlock()
			if req.Name != "backend-1" || req.Mesh != "default" || req.DataplaneToken != "the-token" || req.ProxyType != "dataplane" {
				t.Errorf("bootstrap request = %+v", req)
			}
			if !strings.Contains(req.DataplaneResource, `"name":"backend-1"`) {
				t.Errorf("dataplaneResource = %s", req.DataplaneResource)
			}
			cp.mu.Lock()
			authz := slices.Clone(cp.authz)
			cp.mu.Unlock()
			if len(authz) == 0 || authz[0] != "Bearer the-token" {
				t.Errorf("ADS stream authorization metadata = %q, want Bearer the-token", authz)
			}

			// Traffic goes through the proxy.
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(port)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, "hello\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || line != "hello\n" {
				t.Errorf("echo through the proxy: %q, %v", line, err)
			}
			conn.Close()

			if _, body := httpGet(t, base+"/config_dump"); !strings.Contains(body, `"name": "outbound:127.0.0.1:`+strconv.Itoa(int(port))+`"`) {
				t.Errorf("/config_dump lacks the listener:\n%s", body)
			}
			_, stats := httpGet(t, base+"/stats")
			for _, want := range []string{"control_plane.connected_state: 1", "xds.lds.update_success: 1", "control_plane.mode: \"" + map[bool]string{true: "delta", false: "sotw"}[tc.apiType == corev3.ApiConfigSource_DELTA_GRPC || tc.flag == "delta"] + "\""} {
				if !strings.Contains(stats, want) {
					t.Errorf("/stats lacks %q:\n%s", want, stats)
				}
			}

			resp, err := http.Post(base+"/quitquitquit", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run after /quitquitquit: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after /quitquitquit")
			}
			if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(port)), time.Second); err == nil {
				t.Error("the listener still accepts after shutdown")
			}
		})
	}
}

func TestRunShowsBootstrapRefusal(t *testing.T) {
	cp := newFakeCP(t, corev3.ApiConfigSource_GRPC)
	cp.mu.Lock()
	cp.refuse = true
	cp.mu.Unlock()
	o := &runOptions{
		cpAddress:        cp.srv.URL,
		dataplaneFile:    writeFile(t, "dp.yaml", testDataplane),
		dataplaneVars:    []string{"name=backend-1"},
		caCertFile:       cp.caFile,
		adminAddr:        "127.0.0.1:0",
		bootstrapTimeout: 5 * time.Second,
	}
	err := run(context.Background(), o, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "dataplaneResource.networking.inbound[0].port: must be in inclusive range") {
		t.Errorf("err = %v, want the field path of the refusal", err)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.requests) != 1 {
		t.Errorf("%d bootstrap requests, want 1 (no retry on 400)", len(cp.requests))
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		o    runOptions
		want string
	}{
		{runOptions{cpAddress: "http://cp:5678"}, "use https://"},
		{runOptions{cpAddress: "cp:5678"}, "want a URL"},
		{runOptions{cpAddress: "https://cp", xdsMode: "rest"}, "--xds-mode"},
		{runOptions{cpAddress: "https://127.0.0.1:1", dataplaneFile: writeFile(t, "dp.yaml", testDataplane)}, "placeholder: name"},
	} {
		err := run(context.Background(), &tc.o, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
	if cp, err := parseCPAddress("https://cp.example"); err != nil || cp.hostPort != "cp.example:5678" || cp.host != "cp.example" {
		t.Errorf("default port: %+v, %v", cp, err)
	}
}
