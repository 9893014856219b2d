package server

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// fingerprintOf hashes shared policy results once per mesh state, by
// address, and gives models of equal content equal fingerprints whether
// or not they share them; content that differs gives another fingerprint,
// in this mesh state or the next.
func TestFingerprintOfSharedPolicies(t *testing.T) {
	rules := func(conf string) policy.Rules {
		return policy.Rules{{Subset: policy.Subset{"kuma.io/service": "api"}, Conf: json.RawMessage(conf), Origins: []string{"p"}}}
	}
	model := func(to policy.Rules, single *policy.Rule) *proxymodel.Proxy {
		return &proxymodel.Proxy{Mesh: "default", Name: "web-1", Policies: map[string]*proxymodel.Matched{
			"MeshTimeout": {To: to, Single: single, Policies: []policy.Ref{{Name: "p", Origin: "zone"}}},
		}}
	}
	shared := rules(`{"idleTimeout":"1s"}`)
	single := &policy.Rule{Conf: json.RawMessage(`{"a":1}`)}
	ms := newMeshState(nil, nil)
	var wg sync.WaitGroup
	fps := make([]fingerprint, 8)
	for i := range fps {
		wg.Go(func() {
			f, ok := ms.fingerprintOf(model(shared, single))
			if !ok {
				t.Error("not hashable")
			}
			fps[i] = f
		})
	}
	wg.Wait()
	for i := range fps {
		if fps[i] != fps[0] {
			t.Fatal("one model, different fingerprints")
		}
	}
	// Equal content elsewhere, in this mesh state and a new one.
	copyFP, _ := ms.fingerprintOf(model(rules(`{"idleTimeout":"1s"}`), &policy.Rule{Conf: json.RawMessage(`{"a":1}`)}))
	nextFP, _ := newMeshState(nil, nil).fingerprintOf(model(rules(`{"idleTimeout":"1s"}`), &policy.Rule{Conf: json.RawMessage(`{"a":1}`)}))
	if copyFP != fps[0] || nextFP != fps[0] {
		t.Error("equal content, different fingerprints")
	}
	// Other content.
	for _, m := range []*proxymodel.Proxy{
		model(rules(`{"idleTimeout":"2s"}`), single),
		model(shared, &policy.Rule{Conf: json.RawMessage(`{"a":2}`)}),
		model(shared, nil),
		model(nil, single),
	} {
		if f, _ := ms.fingerprintOf(m); f == fps[0] {
			t.Errorf("other content, same fingerprint: %+v", m.Policies["MeshTimeout"])
		}
	}
}
