package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	filealv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// The net/http path (here an HTTP/2 request and a request no route
// matches) logs one line per request and replaces the trace context of
// the request with its span's.
func TestObserverNetHTTP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	fal, _ := anypb.New(&filealv3.FileAccessLog{Path: path, AccessLogFormat: &filealv3.FileAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
		Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{
			InlineString: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_SENT%\n"}}},
	}}})
	zc, _ := anypb.New(&tracev3.ZipkinConfig{CollectorCluster: "zipkin", CollectorEndpoint: "/api/v2/spans", CollectorEndpointVersion: tracev3.ZipkinConfig_HTTP_JSON})
	cfg := &hcmv3.HttpConnectionManager{
		StatPrefix: "t",
		AccessLog:  []*accesslogv3.AccessLog{{Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: fal}}},
		Tracing:    &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{Name: "envoy.tracers.zipkin", ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: zc}}},
	}
	if _, err := buildObserver(cfg, func(string) *cluster.Cluster { return nil }, stats.NewStore()); err == nil || !strings.Contains(err.Error(), `cluster "zipkin" not found`) {
		t.Fatalf("missing collector cluster: %v", err)
	}
	cfg.Tracing = nil
	obs, err := buildObserver(cfg, noClusters, stats.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"}, Routes: []*routev3.Route{direct(prefix("/ok"), "hello")},
	}}})
	h.obs = obs
	r := httptest.NewRequest("GET", "/ok", nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	if got := body(t, serve(t, h, r)); got != "hello" {
		t.Fatalf("body %q", got)
	}
	serve(t, h, httptest.NewRequest("POST", "/nope", nil))
	want := []string{"GET /ok HTTP/2 200 - 5", "POST /nope HTTP/1.1 404 NR 0"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if got := strings.Split(strings.TrimSpace(string(b)), "\n"); len(got) == 2 {
			if got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("lines %q, want %q", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFlagsOf(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{503, bodyNoHealthyUpstream, "UH"}, {504, bodyTimeout, "UT"}, {503, bodyConnectFailure, "UF"},
		{503, bodyReset, "UC"}, {503, bodyNoCluster, "NC"}, {503, bodyOverflow, "UO"},
		{429, bodyRateLimited, "RL"}, {418, bodyFaultAbort, "FI"}, {404, "", "NR"}, {200, "direct", ""},
		{403, BodyRBACDenied, ""},
	} {
		if got := flagsOf(c.status, c.body); got != c.want {
			t.Errorf("flagsOf(%d, %q) = %q, want %q", c.status, c.body, got, c.want)
		}
	}
}

var _ http.Flusher = (*obsWriter)(nil)
