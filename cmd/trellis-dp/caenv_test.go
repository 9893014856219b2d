package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// The control plane's CA comes from --ca-cert-file, else from
// $TRELLIS_CONTROL_PLANE_CA_CERT; garbage in the variable is an error
// naming it.
func TestCPTLSConfigFromEnv(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	certFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envCACert, string(pemBytes))
	cfg, err := cpTLSConfig("", "cp.example")
	if err != nil || cfg.RootCAs == nil || cfg.ServerName != "cp.example" {
		t.Fatalf("from the env: %+v, %v", cfg, err)
	}
	t.Setenv(envCACert, "not a certificate")
	if _, err := cpTLSConfig("", "cp.example"); err == nil || !strings.Contains(err.Error(), envCACert) {
		t.Fatalf("garbage: %v, want an error naming %s", err, envCACert)
	}
	if _, err := cpTLSConfig(certFile, "cp.example"); err != nil {
		t.Fatalf("--ca-cert-file wins over the env: %v", err)
	}
	if _, err := cpTLSConfig(filepath.Join(t.TempDir(), "missing.pem"), "cp.example"); err == nil {
		t.Fatal("a missing --ca-cert-file is an error")
	}
	t.Setenv(envCACert, "")
	if cfg, err := cpTLSConfig("", "cp.example"); err != nil || cfg.RootCAs != nil {
		t.Fatalf("neither: want the system roots, got %+v, %v", cfg, err)
	}
}

// Without --dataplane-file the bootstrap request names the stored Dataplane
// and carries no resource; 404 (not written yet) is retried; the CA comes
// from the environment.
func TestBootstrapOfStoredDataplane(t *testing.T) {
	var mu sync.Mutex
	var reqs []map[string]any
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		reqs = append(reqs, req)
		n := len(reqs)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":404,"detail":"Dataplane \"web-1.ns\" does not exist in mesh \"default\""}`))
			return
		}
		b := &bootstrapv3.Bootstrap{Node: &corev3.Node{Id: "default.web-1.ns"}, DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{ApiType: corev3.ApiConfigSource_GRPC}}}
		js, _ := protojson.Marshal(b)
		_, _ = w.Write(js)
	}))
	defer srv.Close()
	t.Setenv(envCACert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	o := &runOptions{cpAddress: srv.URL, name: "web-1.ns", mesh: "default", adminAddr: "127.0.0.1:9901", bootstrapTimeout: 10 * time.Second}
	cp, err := parseCPAddress(o.cpAddress)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := cpTLSConfig("", cp.host)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
	b, err := fetchBootstrap(context.Background(), o, cp, hc, slog.New(slog.DiscardHandler))
	if err != nil || b.GetNode().GetId() != "default.web-1.ns" {
		t.Fatalf("bootstrap: %v, %v", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (two 404s retried)", len(reqs))
	}
	if reqs[0]["name"] != "web-1.ns" || reqs[0]["mesh"] != "default" || reqs[0]["dataplaneResource"] != "" {
		t.Fatalf("request: %v", reqs[0])
	}
}

// Bad flag combinations without --dataplane-file name the flag.
func TestStoredDataplaneFlags(t *testing.T) {
	for _, tc := range []struct {
		o    runOptions
		want string
	}{
		{runOptions{mesh: "default"}, "--name"},
		{runOptions{name: "a"}, "--mesh"},
		{runOptions{name: "a", mesh: "m", proxyType: proxyTypeIngress}, "--proxy-type ingress needs --dataplane-file"},
		{runOptions{name: "a", mesh: "m", dataplaneVars: []string{"a=b"}}, "--dataplane-var"},
	} {
		if _, err := storedDataplane(&tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}
