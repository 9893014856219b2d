package meshtrafficpermission_test

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trellis-mesh/trellis/internal/policy"
	mtp "github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// The Applier (which computes the permissions of rules proxies share once
// per snapshot) gives every inbound what Compute gives it, with proxies
// built concurrently and more than once.
func TestApplierIsCompute(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		snap := load(t, file)
		ix := proxymodel.NewIndex(snap, mtp.Applier{})
		var wg sync.WaitGroup
		for range 3 {
			for _, dp := range snap.Dataplanes {
				wg.Go(func() {
					p, err := ix.Build(dp.Name)
					if err != nil {
						t.Error(err)
						return
					}
					res, err := mtp.Compute(snap.Mesh, policy.Dataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}, snap.Policies[mtp.Kind])
					if err != nil {
						t.Error(err)
						return
					}
					for i, in := range p.Inbounds {
						got, _ := json.Marshal(in.Permissions)
						want, _ := json.Marshal(res.Inbounds[i].Permissions)
						if string(got) != string(want) {
							t.Errorf("%s %s inbound %d: %s, Compute gives %s", file, dp.Name, i, got, want)
						}
					}
				})
			}
		}
		wg.Wait()
	}
}
