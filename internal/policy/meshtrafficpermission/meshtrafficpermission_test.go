package meshtrafficpermission_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
	mtp "github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// load decodes a test file into a mesh snapshot with its policies.
func load(t *testing.T, path string) *proxymodel.MeshSnapshot {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snap := &proxymodel.MeshSnapshot{Mesh: "default", Policies: map[string][]proxymodel.PolicyItem{}}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dp, ok := res.Spec.(*mesh.Dataplane); ok {
			snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: dp})
			continue
		}
		kind := res.Desc.Kind
		snap.Policies[kind] = append(snap.Policies[kind], proxymodel.PolicyItem{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec})
	}
	return snap
}

// goldenInbound is what the golden files hold per inbound.
type goldenInbound struct {
	Inbound     string                  `json:"inbound"`
	Policies    []policy.Ref            `json:"policies"`
	Permissions *proxymodel.Permissions `json:"permissions"`
	Notes       []string                `json:"notes,omitempty"`
}

// TestGolden computes the permissions of every Dataplane of each
// testdata/*.yaml through proxymodel (as the xDS server does) and compares
// them with testdata/*.golden.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			snap := load(t, file)
			ix := proxymodel.NewIndex(snap, mtp.Applier{})
			out := map[string][]goldenInbound{}
			for _, dp := range snap.Dataplanes {
				p, err := ix.Build(dp.Name)
				if err != nil {
					t.Fatal(err)
				}
				res, err := mtp.Compute(snap.Mesh, policy.Dataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}, snap.Policies[mtp.Kind])
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Inbounds) != len(res.Inbounds) {
					t.Fatalf("%d inbounds in the model, %d computed", len(p.Inbounds), len(res.Inbounds))
				}
				for i, in := range p.Inbounds {
					if in.Permissions == nil {
						t.Fatalf("inbound %d has no Permissions", i)
					}
					out[dp.Name] = append(out[dp.Name], goldenInbound{
						Inbound:     in.Service,
						Policies:    res.Matched.Inbounds[i].Policies,
						Permissions: in.Permissions,
						Notes:       res.Inbounds[i].Notes,
					})
				}
			}
			js, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", append(js, '\n'))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/policy/meshtrafficpermission -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs; if the change is intended run go test ./internal/policy/meshtrafficpermission -update\ngot:\n%s", path, got)
	}
}

// decide evaluates first-match permissions for a client SPIFFE ID, as the
// RBAC filters do: the first matching rule's action, Deny when none.
func decide(p *proxymodel.Permissions, meshName, id string) string {
	for _, r := range p.Rules {
		pr := r.Principal
		if pr.Any && strings.HasPrefix(id, "spiffe://"+meshName+"/") ||
			pr.Exact != "" && pr.Exact == id ||
			pr.Prefix != "" && strings.HasPrefix(id, pr.Prefix) {
			return r.Action
		}
	}
	return proxymodel.ActionDeny
}

func TestDecisions(t *testing.T) {
	snap := load(t, "testdata/identity-rules.yaml")
	p, err := proxymodel.NewIndex(snap, mtp.Applier{}).Build("backend-1")
	if err != nil {
		t.Fatal(err)
	}
	perms := p.Inbounds[0].Permissions
	for id, want := range map[string]string{
		"spiffe://default/web":          proxymodel.ActionAllow,
		"spiffe://default/cron":         proxymodel.ActionDeny,
		"spiffe://default/batch":        proxymodel.ActionAllowWithShadowDeny,
		"spiffe://default/legacy-app":   proxymodel.ActionDeny,
		"spiffe://default/other":        proxymodel.ActionDeny,
		"spiffe://other-mesh/anything":  proxymodel.ActionAllow,
		"spiffe://default/legacy-batch": proxymodel.ActionDeny,
	} {
		if got := decide(perms, "default", id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}

	snap = load(t, "testdata/from.yaml")
	p, err = proxymodel.NewIndex(snap, mtp.Applier{}).Build("backend-1")
	if err != nil {
		t.Fatal(err)
	}
	main, admin := p.Inbounds[0].Permissions, p.Inbounds[1].Permissions
	for _, tc := range []struct {
		perms *proxymodel.Permissions
		id    string
		want  string
	}{
		{main, "spiffe://default/web", proxymodel.ActionDeny},
		{main, "spiffe://default/frontend", proxymodel.ActionAllow},
		{admin, "spiffe://default/ops", proxymodel.ActionAllow},
		{admin, "spiffe://default/web", proxymodel.ActionDeny},
	} {
		if got := decide(tc.perms, "default", tc.id); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.id, got, tc.want)
		}
	}
}

func TestNoPolicyDeniesEverything(t *testing.T) {
	snap := load(t, "testdata/no-policy.yaml")
	p, err := proxymodel.NewIndex(snap, mtp.Applier{}).Build("backend-1")
	if err != nil {
		t.Fatal(err)
	}
	if perms := p.Inbounds[0].Permissions; perms == nil || len(perms.Rules) != 0 {
		t.Fatalf("permissions = %+v, want empty (deny all)", perms)
	}
}
