package policy_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
)

// moved returns a copy of dp with another name and address, selected by
// the same policies as dp unless they name it.
func moved(dp policy.Dataplane, i int) policy.Dataplane {
	out := dp
	out.Name = fmt.Sprintf("%s-copy-%d", dp.Name, i)
	if dp.Spec == nil || dp.Spec.Networking == nil {
		return out
	}
	spec := *dp.Spec
	n := *dp.Spec.Networking
	n.Address = fmt.Sprintf("10.9.%d.%d", i/250, i%250+1)
	n.Inbound = append([]mesh.Inbound(nil), n.Inbound...)
	for j := range n.Inbound {
		if n.Inbound[j].Address != "" {
			n.Inbound[j].Address = n.Address
		}
	}
	spec.Networking = &n
	out.Spec = &spec
	return out
}

// TestMatcherIsMatch checks that a Matcher shared by many proxies, used
// concurrently, gives each proxy exactly what Match gives it, for every
// test input: the proxies of the inputs and copies of them at other
// addresses (which share merged results with them).
func TestMatcherIsMatch(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			in := load(t, file)
			var dps []policy.Dataplane
			for _, dp := range in.dataplanes {
				dps = append(dps, dp)
				for i := range 3 {
					dps = append(dps, moved(dp, i))
				}
			}
			for kind, ps := range in.policies {
				mt := policy.NewMatcher(ps)
				var wg sync.WaitGroup
				for round := range 2 {
					for _, dp := range dps {
						wg.Go(func() {
							want, err := policy.Match(dp, ps)
							if err != nil {
								t.Error(err)
								return
							}
							got, err := mt.Match(dp)
							if err != nil {
								t.Error(err)
								return
							}
							if a, b := mustJSON(t, got), mustJSON(t, want); !bytes.Equal(a, b) {
								t.Errorf("%s, %s, round %d: Matcher.Match differs from Match:\n%s\n%s", kind, dp.Name, round, a, b)
							}
							// A caller may replace fields of its result.
							got.Single = nil
							got.Notes = append(got.Notes, "mine")
							for i := range got.Inbounds {
								got.Inbounds[i].Address = "changed"
								got.Inbounds[i].Policies = append(got.Inbounds[i].Policies, policy.Ref{Name: "mine"})
							}
						})
					}
				}
				wg.Wait()
			}
		})
	}
}

// TestMatcherSpecError checks that a spec that cannot be read fails every
// Match of a Matcher as it fails Match.
func TestMatcherSpecError(t *testing.T) {
	ps := []policy.Policy{
		{Name: "good", Spec: map[string]any{"targetRef": map[string]any{"kind": "Mesh"}}},
		{Name: "bad", Spec: map[string]any{"targetRef": "not an object"}},
	}
	dp := policy.Dataplane{Name: "dp", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{Address: "10.0.0.1"}}}
	_, want := policy.Match(dp, ps)
	if want == nil {
		t.Fatal("Match accepted a bad spec")
	}
	mt := policy.NewMatcher(ps)
	for range 2 {
		if _, err := mt.Match(dp); err == nil || err.Error() != want.Error() {
			t.Fatalf("Matcher.Match: %v, want %v", err, want)
		}
	}
}
