package build_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func loadSnapshot(t *testing.T, file string) *proxymodel.MeshSnapshot {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	reg := kinds.Registry()
	snap := &proxymodel.MeshSnapshot{Mesh: "default"}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		res, err := reg.Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: res.Meta.Name, Spec: res.Spec.(*mesh.Dataplane)})
	}
	return snap
}

// dump renders resources as stable, indented JSON.
func dump(t *testing.T, r *build.Resources) []byte {
	t.Helper()
	var parts []json.RawMessage
	add := func(m proto.Message) {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, js)
	}
	for _, x := range r.Listeners {
		add(x)
	}
	for _, x := range r.Routes {
		add(x)
	}
	for _, x := range r.Clusters {
		add(x)
	}
	for _, x := range r.Endpoints {
		add(x)
	}
	for _, x := range r.Secrets {
		add(x)
	}
	// Round-trip through encoding/json for stable formatting (protojson
	// output spacing is deliberately unstable).
	var generic []any
	for _, p := range parts {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatal(err)
		}
		generic = append(generic, v)
	}
	out, err := json.MarshalIndent(generic, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/xds/build -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file; if the change is intended run go test ./internal/xds/build -update\ngot:\n%s", path, got)
	}
}

func TestSidecarGolden(t *testing.T) {
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml"))
	for _, name := range []string{"web-1", "backend-1", "redis-1", "greeter-1"} {
		t.Run(name, func(t *testing.T) {
			p, err := ix.Build(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			first := dump(t, r)
			// Deterministic: building again gives the same bytes.
			r2, _ := build.Sidecar(p)
			if !bytes.Equal(first, dump(t, r2)) {
				t.Fatal("two builds of the same model differ")
			}
			golden(t, "sidecar-"+name, first)
		})
	}
}

func TestProxylessGolden(t *testing.T) {
	r, err := build.Proxyless(proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "proxyless", dump(t, r))
}

func TestEndpointsFollowReadiness(t *testing.T) {
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml"))
	eps := ix.Endpoints("backend")
	if len(eps) != 2 {
		t.Fatalf("backend endpoints = %+v, want the two ready ones", eps)
	}
	if eps[0].Address != "10.0.0.2" || eps[1].Address != "192.0.2.3" {
		t.Fatalf("endpoint addresses %+v: want inbound address, then the advertised address", eps)
	}
	if ix.Protocol("backend") != "http2" || ix.Protocol("redis") != "tcp" {
		t.Fatal("protocols not taken from the inbounds")
	}
}

// testMTLS is the mTLS model of a proxy serving services, with the fixed
// certificates of testdata/tls so that golden files are stable.
func testMTLS(t *testing.T, mode string, services []string) *proxymodel.MTLS {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m := &proxymodel.MTLS{Mode: mode, TrustDomain: "default", TrustedCAs: read("ca.crt")}
	for _, svc := range services {
		m.Identities = append(m.Identities, proxymodel.Identity{
			Service: svc, SpiffeID: proxymodel.SpiffeID("default", svc),
			CertPEM: read("workload.crt"), KeyPEM: read("workload.key"),
		})
	}
	return m
}

// With mTLS: STRICT inbounds take only TLS, PERMISSIVE ones TLS and
// plaintext; outbound clusters originate TLS to the exact destination
// identity; the secrets they name are served.
func TestSidecarMTLSGolden(t *testing.T) {
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml"))
	for _, c := range []struct{ name, mode string }{
		{"web-1", proxymodel.MTLSStrict},
		{"backend-1", proxymodel.MTLSPermissive},
		{"redis-1", proxymodel.MTLSPermissive},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ix.Build(c.name)
			if err != nil {
				t.Fatal(err)
			}
			p.MTLS = testMTLS(t, c.mode, p.Services)
			r, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range r.ByType() {
				for _, x := range res {
					if err := x.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
						t.Fatalf("%T does not pass Envoy's validation: %v", x, err)
					}
				}
			}
			golden(t, "sidecar-mtls-"+strings.ToLower(c.mode)+"-"+c.name, dump(t, r))
		})
	}
}

// A proxy whose mTLS model has no identity is an error, not a config
// that references a secret nobody sends.
func TestSidecarMTLSWithoutIdentity(t *testing.T) {
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml"))
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	p.MTLS = testMTLS(t, proxymodel.MTLSStrict, nil)
	if _, err := build.Sidecar(p); err == nil {
		t.Fatal("built an mTLS config without an identity")
	}
}

// An inbound's own mode (from a MeshTLS policy) overrides the mesh's:
// STRICT gives one TLS chain, PERMISSIVE a TLS and a plaintext chain.
func TestSidecarInboundMTLSMode(t *testing.T) {
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/mesh.yaml"))
	for _, c := range []struct {
		mesh, inbound string
		chains        int
	}{
		{proxymodel.MTLSStrict, "", 1},
		{proxymodel.MTLSStrict, proxymodel.MTLSPermissive, 2},
		{proxymodel.MTLSPermissive, proxymodel.MTLSStrict, 1},
	} {
		p, err := ix.Build("backend-1")
		if err != nil {
			t.Fatal(err)
		}
		p.MTLS = testMTLS(t, c.mesh, p.Services)
		p.Inbounds[0].MTLSMode = c.inbound
		r, err := build.Sidecar(p)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		for _, l := range r.Listeners {
			if strings.HasPrefix(l.GetName(), "inbound:") {
				got = len(l.GetFilterChains())
				break
			}
		}
		if got != c.chains {
			t.Errorf("mesh %s, inbound %q: %d filter chains, want %d", c.mesh, c.inbound, got, c.chains)
		}
	}
}
