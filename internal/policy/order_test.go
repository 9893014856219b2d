package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
)

// sidecar is a proxy with one inbound of service backend (named "http",
// tags version=v1) and labels app=backend.
var sidecar = policy.Dataplane{
	Name:   "backend-1",
	Labels: map[string]string{"app": "backend"},
	Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
		Address: "10.0.0.2",
		Inbound: []mesh.Inbound{{Port: 8080, Name: "http", Tags: map[string]string{mesh.ServiceTag: "backend", "version": "v1"}}},
	}},
}

// pol is a policy with a top-level targetRef and one from[] section with
// a Mesh client ref whose default is {"v": name}.
type pol struct {
	name   string
	origin string
	top    *common.TargetRef
	from   common.TargetRef
}

func (p pol) policy() policy.Policy {
	var labels map[string]string
	if p.origin != "" {
		labels = map[string]string{policy.OriginLabel: p.origin}
	}
	from := p.from
	if from.Kind == "" {
		from.Kind = common.Mesh
	}
	return policy.Policy{Name: p.name, Labels: labels, Spec: map[string]any{
		"targetRef": p.top,
		"from":      []any{map[string]any{"targetRef": from, "default": map[string]string{"v": p.name}}},
	}}
}

func ref(kind common.TargetRefKind, name string) *common.TargetRef {
	return &common.TargetRef{Kind: kind, Name: name}
}

// TestOrder checks the merge order of two policies: the second (more
// specific) one wins.
func TestOrder(t *testing.T) {
	service := common.TargetRef{Kind: common.MeshService, Name: "web"}
	cases := []struct {
		name         string
		weaker, wins pol
	}{
		{"absent targetRef is Mesh; Dataplane beats it",
			pol{name: "a", top: nil}, pol{name: "b", top: ref(common.Dataplane, "backend-1")}},
		{"Dataplane by labels < MeshSubset",
			pol{name: "a", top: &common.TargetRef{Kind: common.Dataplane, Labels: map[string]string{"app": "backend"}}},
			pol{name: "b", top: &common.TargetRef{Kind: common.MeshSubset, Tags: map[string]string{"version": "v1"}}}},
		{"MeshSubset < MeshService",
			pol{name: "a", top: &common.TargetRef{Kind: common.MeshSubset, Tags: map[string]string{"version": "v1"}}},
			pol{name: "b", top: ref(common.MeshService, "backend")}},
		{"MeshService < MeshServiceSubset",
			pol{name: "a", top: ref(common.MeshService, "backend")},
			pol{name: "b", top: &common.TargetRef{Kind: common.MeshServiceSubset, Name: "backend", Tags: map[string]string{"version": "v1"}}}},
		{"Dataplane without sectionName < with",
			pol{name: "a", top: ref(common.Dataplane, "backend-1")},
			pol{name: "b", top: &common.TargetRef{Kind: common.Dataplane, Name: "backend-1", SectionName: "http"}}},
		{"kind beats origin",
			pol{name: "a", origin: policy.OriginZone, top: ref(common.Mesh, "")},
			pol{name: "b", origin: policy.OriginGlobal, top: ref(common.MeshService, "backend")}},
		{"global < zone",
			pol{name: "a", origin: policy.OriginGlobal},
			pol{name: "b", origin: policy.OriginZone}},
		{"no origin label counts as zone",
			pol{name: "a", origin: policy.OriginGlobal},
			pol{name: "b"}},
		{"origin beats the from kind",
			pol{name: "a", origin: policy.OriginGlobal, from: service},
			pol{name: "b", origin: policy.OriginZone}},
		{"the from kind beats the name",
			pol{name: "a"},
			pol{name: "b", from: service}},
		{"name reversed: a beats b",
			pol{name: "b"}, pol{name: "a"}},
	}
	client := map[string]string{mesh.ServiceTag: "web"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, ps := range [][]policy.Policy{
				{tc.weaker.policy(), tc.wins.policy()},
				{tc.wins.policy(), tc.weaker.policy()},
			} {
				m, err := policy.Match(sidecar, ps)
				if err != nil {
					t.Fatal(err)
				}
				in := m.Inbounds[0]
				if len(in.Policies) != 2 {
					t.Fatalf("policies of the inbound = %v, want both", in.Policies)
				}
				r := in.From.Compute(client)
				if r == nil {
					t.Fatalf("no rule for %v in %+v", client, in.From)
				}
				if got, want := string(r.Conf), `{"v":"`+tc.wins.name+`"}`; got != want {
					t.Fatalf("merged conf = %s, want %s (origins %v)", got, want, r.Origins)
				}
				if got := r.Origins; len(got) != 2 || got[1] != tc.wins.name {
					t.Fatalf("origins = %v, want %s last", got, tc.wins.name)
				}
			}
		})
	}
}

func TestSelection(t *testing.T) {
	gateway := policy.Dataplane{Name: "edge-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
		Address: "10.0.0.9", Gateway: &mesh.Gateway{Tags: map[string]string{mesh.ServiceTag: "edge"}},
	}}}
	noInbounds := policy.Dataplane{Name: "client-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{Address: "10.0.0.5"}}}
	cases := []struct {
		name     string
		dp       policy.Dataplane
		top      *common.TargetRef
		selected bool
		inbound  bool
	}{
		{"Mesh", sidecar, ref(common.Mesh, ""), true, true},
		{"Mesh, proxy without inbounds", noInbounds, nil, true, false},
		{"Mesh, Sidecar only, sidecar", sidecar, &common.TargetRef{Kind: common.Mesh, ProxyTypes: []common.ProxyType{common.Sidecar}}, true, true},
		{"Mesh, Gateway only, sidecar", sidecar, &common.TargetRef{Kind: common.Mesh, ProxyTypes: []common.ProxyType{common.Gateway}}, false, false},
		{"Mesh, Gateway only, gateway", gateway, &common.TargetRef{Kind: common.Mesh, ProxyTypes: []common.ProxyType{common.Gateway}}, true, false},
		{"MeshSubset match", sidecar, &common.TargetRef{Kind: common.MeshSubset, Tags: map[string]string{"version": "v1"}}, true, true},
		{"MeshSubset mismatch", sidecar, &common.TargetRef{Kind: common.MeshSubset, Tags: map[string]string{"version": "v2"}}, false, false},
		{"MeshSubset on gateway tags", gateway, &common.TargetRef{Kind: common.MeshSubset, Tags: map[string]string{mesh.ServiceTag: "edge"}}, true, false},
		{"MeshService", sidecar, ref(common.MeshService, "backend"), true, true},
		{"MeshService other", sidecar, ref(common.MeshService, "web"), false, false},
		{"MeshService, proxy without inbounds", noInbounds, ref(common.MeshService, "backend"), false, false},
		{"MeshServiceSubset", sidecar, &common.TargetRef{Kind: common.MeshServiceSubset, Name: "backend", Tags: map[string]string{"version": "v1"}}, true, true},
		{"MeshServiceSubset mismatch", sidecar, &common.TargetRef{Kind: common.MeshServiceSubset, Name: "backend", Tags: map[string]string{"version": "v2"}}, false, false},
		{"Dataplane by name", sidecar, ref(common.Dataplane, "backend-1"), true, true},
		{"Dataplane other name", sidecar, ref(common.Dataplane, "backend-2"), false, false},
		{"Dataplane by labels", sidecar, &common.TargetRef{Kind: common.Dataplane, Labels: map[string]string{"app": "backend"}}, true, true},
		{"Dataplane other labels", sidecar, &common.TargetRef{Kind: common.Dataplane, Labels: map[string]string{"app": "web"}}, false, false},
		{"Dataplane every proxy", noInbounds, &common.TargetRef{Kind: common.Dataplane}, true, false},
		{"Dataplane sectionName by inbound name", sidecar, &common.TargetRef{Kind: common.Dataplane, Name: "backend-1", SectionName: "http"}, true, true},
		{"Dataplane sectionName other", sidecar, &common.TargetRef{Kind: common.Dataplane, Name: "backend-1", SectionName: "grpc"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := policy.Match(tc.dp, []policy.Policy{pol{name: "p", top: tc.top}.policy()})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(m.Policies) == 1; got != tc.selected {
				t.Fatalf("selected = %v, want %v (notes %v)", got, tc.selected, m.Notes)
			}
			if got := len(m.Inbounds) > 0 && len(m.Inbounds[0].Policies) == 1; got != tc.inbound {
				t.Fatalf("inbound selected = %v, want %v", got, tc.inbound)
			}
		})
	}
}

func TestSectionNameByPort(t *testing.T) {
	dp := policy.Dataplane{Name: "db-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
		Address: "10.0.0.3",
		Inbound: []mesh.Inbound{
			{Port: 5432, Tags: map[string]string{mesh.ServiceTag: "db"}},
			{Port: 9187, Tags: map[string]string{mesh.ServiceTag: "db-metrics"}},
		},
	}}}
	m, err := policy.Match(dp, []policy.Policy{pol{name: "p", top: &common.TargetRef{Kind: common.Dataplane, SectionName: "9187"}}.policy()})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inbounds[0].Policies) != 0 || len(m.Inbounds[1].Policies) != 1 {
		t.Fatalf("sectionName 9187 selected %+v", m.Inbounds)
	}
}

func TestSkippedKindsAreNoted(t *testing.T) {
	ps := []policy.Policy{
		pol{name: "gw", top: ref(common.MeshGateway, "edge")}.policy(),
		pol{name: "route", top: ref(common.MeshHTTPRoute, "r")}.policy(),
		{Name: "ext", Spec: map[string]any{"to": []any{map[string]any{
			"targetRef": map[string]any{"kind": "MeshExternalService", "name": "x"}, "default": map[string]any{},
		}}}},
	}
	m, err := policy.Match(sidecar, ps)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(m.Notes, "\n")
	for _, want := range []string{`policy "gw" is skipped: MeshGateway`, `policy "route" is skipped: MeshHTTPRoute`, `policy "ext": to[0] is skipped: targetRef kind MeshExternalService`} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes %q lack %q", m.Notes, want)
		}
	}
	if len(m.To) != 0 {
		t.Fatalf("to rules = %+v, want none", m.To)
	}
}

func TestMerge(t *testing.T) {
	cases := []struct {
		name  string
		confs []string
		want  string
	}{
		{"none", nil, "null"},
		{"one", []string{`{"a":1}`}, `{"a":1}`},
		{"later wins, objects merge", []string{`{"a":1,"o":{"x":1,"y":2}}`, `{"a":2,"o":{"y":3}}`}, `{"a":2,"o":{"x":1,"y":3}}`},
		{"null deletes", []string{`{"a":1,"b":2}`, `{"a":null}`}, `{"b":2}`},
		{"nulls vanish from the first conf", []string{`{"a":null,"b":{"c":null}}`}, `{"b":{}}`},
		{"lists replace", []string{`{"l":[1,2]}`, `{"l":[3]}`}, `{"l":[3]}`},
		{"append lists concatenate", []string{`{"appendX":[1,2]}`, `{"appendX":[3]}`}, `{"appendX":[1,2,3]}`},
		{"append lists nested", []string{`{"o":{"appendX":[1]}}`, `{"o":{"appendX":[2]}}`}, `{"o":{"appendX":[1,2]}}`},
		{"append with null deletes", []string{`{"appendX":[1]}`, `{"appendX":null}`}, `{}`},
		{"non-object replaces", []string{`{"a":1}`, `[1]`}, `[1]`},
		{"numbers keep their text", []string{`{"n":1.50}`, `{"m":10000000000000000001}`}, `{"m":10000000000000000001,"n":1.50}`},
		{"empty and null confs are skipped", []string{`{"a":1}`, ``, `null`}, `{"a":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var confs []json.RawMessage
			for _, c := range tc.confs {
				confs = append(confs, json.RawMessage(c))
			}
			got, err := policy.Merge(confs...)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				got = json.RawMessage("null")
			}
			if string(got) != tc.want {
				t.Fatalf("Merge = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOverlappingSubsets checks that a client matching two incomparable
// subsets gets the fold of both.
func TestOverlappingSubsets(t *testing.T) {
	p := policy.Policy{Name: "p", Spec: map[string]any{"from": []any{
		map[string]any{"targetRef": map[string]any{"kind": "MeshSubset", "tags": map[string]string{"zone": "east"}}, "default": map[string]any{"x": 1}},
		map[string]any{"targetRef": map[string]any{"kind": "MeshSubset", "tags": map[string]string{"team": "a"}}, "default": map[string]any{"y": 2}},
		map[string]any{"targetRef": map[string]any{"kind": "MeshSubset", "tags": map[string]string{"zone": "west"}}, "default": map[string]any{"x": 3}},
	}}}
	m, err := policy.Match(sidecar, []policy.Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	from := m.Inbounds[0].From
	check := func(tags map[string]string, want string) {
		t.Helper()
		r := from.Compute(tags)
		got := "none"
		if r != nil {
			got = string(r.Conf)
		}
		if got != want {
			t.Errorf("Compute(%v) = %s, want %s", tags, got, want)
		}
	}
	check(map[string]string{"zone": "east", "team": "a", "other": "x"}, `{"x":1,"y":2}`)
	check(map[string]string{"zone": "west", "team": "a"}, `{"x":3,"y":2}`)
	check(map[string]string{"zone": "east"}, `{"x":1}`)
	check(map[string]string{"team": "b"}, "none")
	// east+west never combine: 3 subsets and 2 unions.
	if len(from) != 5 {
		t.Fatalf("rules = %d, want 5: %+v", len(from), from)
	}
}

func TestTyped(t *testing.T) {
	type conf struct {
		Action string `json:"action"`
	}
	rules, err := policy.Typed[conf](policy.Rules{{Subset: policy.Subset{}, Conf: json.RawMessage(`{"action":"Deny"}`), Origins: []string{"p"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Conf.Action != "Deny" || rules[0].Origins[0] != "p" {
		t.Fatalf("Typed = %+v", rules)
	}
	if _, err := policy.Typed[conf](policy.Rules{{Conf: json.RawMessage(`{"action":1}`)}}); err == nil {
		t.Fatal("Typed accepted a conf of the wrong shape")
	}
}

func TestOutbound(t *testing.T) {
	p := policy.Policy{Name: "p", Spec: map[string]any{"to": []any{
		map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"a": 1}},
		map[string]any{"targetRef": map[string]any{"kind": "MeshService", "name": "db"}, "default": map[string]any{"b": 2}},
		map[string]any{"targetRef": map[string]any{"kind": "MeshServiceSubset", "name": "db", "tags": map[string]string{"v": "2"}}, "default": map[string]any{"c": 3}},
	}}}
	m, err := policy.Match(sidecar, []policy.Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Outbound("db"); r == nil || string(r.Conf) != `{"a":1,"b":2}` {
		t.Fatalf("Outbound(db) = %+v", r)
	}
	if r := m.Outbound("web"); r == nil || string(r.Conf) != `{"a":1}` {
		t.Fatalf("Outbound(web) = %+v", r)
	}
	if r := m.To.Compute(map[string]string{mesh.ServiceTag: "db", "v": "2"}); r == nil || string(r.Conf) != `{"a":1,"b":2,"c":3}` {
		t.Fatalf("Compute(db v2) = %+v", r)
	}
}
