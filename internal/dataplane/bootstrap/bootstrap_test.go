package bootstrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

const dataplaneYAML = `type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: {{address}}
  inbound:
  - port: 10001
    servicePort: 8080
    tags:
      kuma.io/service: {{  service }}
`

func TestParseDataplaneSubstitutesVars(t *testing.T) {
	vars, err := bootstrap.ParseVars([]string{"name=backend-1", "address=10.0.0.7", "service=backend", "unused=x=y"})
	if err != nil {
		t.Fatal(err)
	}
	if vars["unused"] != "x=y" {
		t.Errorf("value with '=': %q", vars["unused"])
	}
	dp, err := bootstrap.ParseDataplane([]byte(dataplaneYAML), vars, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if dp.Name != "backend-1" || dp.Mesh != "default" {
		t.Errorf("name, mesh = %q, %q", dp.Name, dp.Mesh)
	}
	var obj map[string]any
	if err := json.Unmarshal(dp.JSON, &obj); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, dp.JSON)
	}
	nw := obj["networking"].(map[string]any)
	if nw["address"] != "10.0.0.7" {
		t.Errorf("address = %v", nw["address"])
	}
	tags := nw["inbound"].([]any)[0].(map[string]any)["tags"].(map[string]any)
	if tags["kuma.io/service"] != "backend" {
		t.Errorf("service tag = %v", tags["kuma.io/service"])
	}
}

func TestParseDataplaneOverridesNameAndMesh(t *testing.T) {
	in := `{"type": "Dataplane", "mesh": "default", "name": "a", "networking": {"address": "10.0.0.1"}}`
	dp, err := bootstrap.ParseDataplane([]byte(in), nil, "b", "other")
	if err != nil {
		t.Fatal(err)
	}
	if dp.Name != "b" || dp.Mesh != "other" {
		t.Errorf("name, mesh = %q, %q", dp.Name, dp.Mesh)
	}
	if !strings.Contains(string(dp.JSON), `"name":"b"`) || !strings.Contains(string(dp.JSON), `"mesh":"other"`) {
		t.Errorf("overrides not in the JSON: %s", dp.JSON)
	}
}

func TestMissingVarsAreNamed(t *testing.T) {
	_, err := bootstrap.ParseDataplane([]byte(dataplaneYAML), map[string]string{"name": "x"}, "", "")
	if !errors.Is(err, bootstrap.ErrMissingVar) {
		t.Fatalf("err = %v, want ErrMissingVar", err)
	}
	if !strings.Contains(err.Error(), "address, service") {
		t.Errorf("err = %q, want both missing names", err)
	}
}

func TestLoadDataplaneErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- just\n- a list\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.LoadDataplane(bad, nil, "", ""); err == nil || !strings.Contains(err.Error(), "object") {
		t.Errorf("a YAML list: err = %v", err)
	}
	if _, err := bootstrap.LoadDataplane(filepath.Join(dir, "none.yaml"), nil, "", ""); err == nil {
		t.Error("a missing file: no error")
	}
	for _, kv := range []string{"novalue", "=x"} {
		if _, err := bootstrap.ParseVars([]string{kv}); err == nil {
			t.Errorf("ParseVars(%q): no error", kv)
		}
	}
}

// testBootstrap is a bootstrap as the control plane sends it, with an Any
// (the ADS cluster's TLS context) that must decode.
func testBootstrap(t *testing.T, apiType corev3.ApiConfigSource_ApiType) []byte {
	t.Helper()
	tlsCtx, err := anypb.New(&tlsv3.UpstreamTlsContext{Sni: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: "default.backend-1", Cluster: "backend"},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
			ApiType: apiType, TransportApiVersion: corev3.ApiVersion_V3,
		}},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{{
			Name: "ads_cluster",
			TransportSocket: &corev3.TransportSocket{
				Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsCtx},
			},
		}}},
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestFetch(t *testing.T) {
	var got bootstrap.Request
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/bootstrap" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("request body: %v", err)
		}
		_, _ = w.Write(testBootstrap(t, corev3.ApiConfigSource_DELTA_GRPC))
	}))
	defer srv.Close()

	req := &bootstrap.Request{
		Mesh: "default", Name: "backend-1", ProxyType: "dataplane",
		DataplaneResource: `{"type":"Dataplane"}`, DataplaneToken: "tok",
		Version: bootstrap.Version{TrellisDp: bootstrap.BuildVersion{Version: "dev"}},
	}
	b, err := bootstrap.Fetch(context.Background(), srv.Client(), srv.URL+"/", req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mesh != "default" || got.Name != "backend-1" || got.ProxyType != "dataplane" ||
		got.DataplaneResource != `{"type":"Dataplane"}` || got.DataplaneToken != "tok" || got.Version.TrellisDp.Version != "dev" {
		t.Errorf("request = %+v", got)
	}
	s, err := bootstrap.SettingsOf(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.GetId() != "default.backend-1" || s.APIType != corev3.ApiConfigSource_DELTA_GRPC {
		t.Errorf("settings = %v, %v", s.Node, s.APIType)
	}
}

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      []string
		retryable bool
	}{
		{
			name:   "std-errors with field paths",
			status: http.StatusBadRequest,
			body: `{"type":"/std-errors","status":400,"title":"Bad Request","detail":"the bootstrap request is not valid",
				"invalid_parameters":[{"field":"dataplaneResource.networking.address","reason":"must be defined"},{"field":"mesh","reason":"mesh \"x\" does not exist"}]}`,
			want: []string{"400", "the bootstrap request is not valid", "* dataplaneResource.networking.address: must be defined", `* mesh: mesh "x" does not exist`},
		},
		{name: "plain 503", status: http.StatusServiceUnavailable, body: "starting up", want: []string{"503", "starting up"}, retryable: true},
		{name: "unknown field in the bootstrap", status: http.StatusOK, body: `{"node":{"id":"a"},"nonsense":1}`, want: []string{"nonsense"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := bootstrap.Fetch(context.Background(), srv.Client(), srv.URL, &bootstrap.Request{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got := bootstrap.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}

func TestFetchUnreachableIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := bootstrap.Fetch(context.Background(), http.DefaultClient, url, &bootstrap.Request{})
	if !errors.Is(err, bootstrap.ErrUnreachable) || !bootstrap.Retryable(err) {
		t.Errorf("err = %v; want ErrUnreachable, retryable", err)
	}
}

func TestFetchUntrustedCertificateIsNotRetryable(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := bootstrap.Fetch(context.Background(), http.DefaultClient, srv.URL, &bootstrap.Request{})
	if err == nil || bootstrap.Retryable(err) || !strings.Contains(err.Error(), "--ca-cert-file") {
		t.Errorf("err = %v; want a non-retryable certificate error", err)
	}
}

func TestSettingsOfRejectsIncompleteBootstraps(t *testing.T) {
	for name, b := range map[string]*bootstrapv3.Bootstrap{
		"no node":       {},
		"no ads_config": {Node: &corev3.Node{Id: "a"}},
		"REST api_type": {Node: &corev3.Node{Id: "a"}, DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{ApiType: corev3.ApiConfigSource_REST}}},
	} {
		if _, err := bootstrap.SettingsOf(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
