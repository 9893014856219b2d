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

// The inbounds of policy results are hashed field by field (hashInbounds):
// every field counts, and shared rules count by content.
func TestFingerprintOfPolicyInbounds(t *testing.T) {
	if !inboundFast {
		t.Fatal("policy.Inbound has fields hashInbounds does not write: add them there")
	}
	from := func(conf string) policy.Rules {
		return policy.Rules{{Subset: policy.Subset{}, Conf: json.RawMessage(conf), Origins: []string{"p"}}}
	}
	tags := map[string]string{"kuma.io/service": "web"}
	base := func() policy.Inbound {
		return policy.Inbound{
			Index: 0, Name: "http", Address: "10.0.0.1", Port: 8080, Tags: tags,
			Policies: []policy.Ref{{Name: "p", Origin: "zone"}}, From: from(`{"a":1}`),
			Rules: []policy.Entry{{Policy: "p", Index: 0, Conf: json.RawMessage(`{"b":2}`)}},
		}
	}
	model := func(in policy.Inbound) *proxymodel.Proxy {
		return &proxymodel.Proxy{Name: "web-1", Policies: map[string]*proxymodel.Matched{
			"MeshTimeout": {Inbounds: []policy.Inbound{in}},
			"MeshRetry":   {Inbounds: []policy.Inbound{in}},
		}}
	}
	ms := newMeshState(nil, nil)
	want, ok := ms.fingerprintOf(model(base()))
	if !ok {
		t.Fatal("not hashable")
	}
	same := base()
	same.Tags = map[string]string{"kuma.io/service": "web"}
	same.From = from(`{"a":1}`)
	if got, _ := ms.fingerprintOf(model(same)); got != want {
		t.Error("equal content in other maps and slices: another fingerprint")
	}
	for name, edit := range map[string]func(*policy.Inbound){
		"index":    func(in *policy.Inbound) { in.Index = 1 },
		"name":     func(in *policy.Inbound) { in.Name = "" },
		"address":  func(in *policy.Inbound) { in.Address = "10.0.0.2" },
		"port":     func(in *policy.Inbound) { in.Port = 8081 },
		"tags":     func(in *policy.Inbound) { in.Tags = map[string]string{"kuma.io/service": "api"} },
		"nil tags": func(in *policy.Inbound) { in.Tags = nil },
		"policies": func(in *policy.Inbound) { in.Policies = []policy.Ref{{Name: "q", Origin: "zone"}} },
		"no refs":  func(in *policy.Inbound) { in.Policies = []policy.Ref{} },
		"nil refs": func(in *policy.Inbound) { in.Policies = nil },
		"from":     func(in *policy.Inbound) { in.From = from(`{"a":2}`) },
		"rules":    func(in *policy.Inbound) { in.Rules = nil },
	} {
		in := base()
		edit(&in)
		if got, _ := ms.fingerprintOf(model(in)); got == want {
			t.Errorf("%s changed: same fingerprint", name)
		}
	}
}

// Inbound permissions, hashed once per mesh state by address, count by
// content.
func TestFingerprintOfPermissions(t *testing.T) {
	perms := func(action string) *proxymodel.Permissions {
		return &proxymodel.Permissions{Rules: []proxymodel.PermissionRule{{Principal: proxymodel.Principal{Any: true}, Action: action}}}
	}
	model := func(p *proxymodel.Permissions) *proxymodel.Proxy {
		return &proxymodel.Proxy{Name: "web-1", Inbounds: []proxymodel.Inbound{{Address: "10.0.0.1", Port: 8080, Permissions: p}}}
	}
	ms := newMeshState(nil, nil)
	shared := perms("Allow")
	a, _ := ms.fingerprintOf(model(shared))
	b, _ := ms.fingerprintOf(model(shared))
	c, _ := ms.fingerprintOf(model(perms("Allow")))
	d, _ := ms.fingerprintOf(model(perms("Deny")))
	e, _ := ms.fingerprintOf(model(nil))
	if a != b || a != c {
		t.Error("equal permissions, different fingerprints")
	}
	if a == d || a == e {
		t.Error("other permissions, same fingerprint")
	}
}
