package meshhttproute_test

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	api "github.com/trellis-mesh/trellis/api/policy/meshhttproute"

	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
)

// match reads a match written in YAML.
func match(t *testing.T, y string) api.Match {
	t.Helper()
	var m api.Match
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// describe renders a match compactly for failure messages.
func describe(m api.Match) string {
	js, _ := json.Marshal(m)
	return string(js)
}

// TestCompareMatch checks Kuma's (and Gateway API's) precedence between
// two matches: a must sort strictly before b.
func TestCompareMatch(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"exact before prefix", `{path: {type: Exact, value: /a}}`, `{path: {type: PathPrefix, value: /abcdef}}`},
		{"exact before regex", `{path: {type: Exact, value: /a}}`, `{path: {type: RegularExpression, value: /a.*}}`},
		{"prefix before regex", `{path: {type: PathPrefix, value: /a}}`, `{path: {type: RegularExpression, value: /abcdef.*}}`},
		{"longer prefix first", `{path: {type: PathPrefix, value: /api/v2}}`, `{path: {type: PathPrefix, value: /api}}`},
		{"longer regex first", `{path: {type: RegularExpression, value: /api/.*}}`, `{path: {type: RegularExpression, value: /a.*}}`},
		{"path before none", `{path: {type: PathPrefix, value: /}}`, `{headers: [{name: x, value: "1"}]}`},
		{"method before none", `{path: {type: PathPrefix, value: /a}, method: GET}`, `{path: {type: PathPrefix, value: /a}, headers: [{name: x, value: "1"}]}`},
		{"more headers first", `{headers: [{name: x, value: "1"}, {name: y, value: "2"}]}`, `{headers: [{name: x, value: "1"}]}`},
		{"headers before query", `{headers: [{name: x, value: "1"}]}`, `{queryParams: [{type: Exact, name: q, value: "1"}, {type: Exact, name: r, value: "1"}]}`},
		{"more query params first", `{queryParams: [{type: Exact, name: q, value: "1"}, {type: Exact, name: r, value: "1"}]}`, `{queryParams: [{type: Exact, name: q, value: "1"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := match(t, c.a), match(t, c.b)
			if got := meshhttproute.CompareMatch(a, b); got >= 0 {
				t.Errorf("CompareMatch(%s, %s) = %d, want < 0", describe(a), describe(b), got)
			}
			if got := meshhttproute.CompareMatch(b, a); got <= 0 {
				t.Errorf("CompareMatch(%s, %s) = %d, want > 0", describe(b), describe(a), got)
			}
		})
	}
	for _, c := range []struct{ name, a, b string }{
		{"two exact paths", `{path: {type: Exact, value: /a}}`, `{path: {type: Exact, value: /abc}}`},
		{"equal prefix lengths", `{path: {type: PathPrefix, value: /ab}}`, `{path: {type: PathPrefix, value: /cd}}`},
		{"header values do not count", `{headers: [{name: x, value: "1"}]}`, `{headers: [{name: y, type: Present}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := meshhttproute.CompareMatch(match(t, c.a), match(t, c.b)); got != 0 {
				t.Errorf("CompareMatch = %d, want 0 (a tie kept in merge order)", got)
			}
		})
	}
}

// spec reads a MeshHTTPRoute spec written in YAML.
func spec(t *testing.T, name, y string) meshhttproute.Named {
	t.Helper()
	var s api.Spec
	if err := yaml.Unmarshal([]byte(y), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return meshhttproute.Named{Name: name, Spec: &s}
}

// routesOf renders routes as "match -> default" lines.
func routesOf(t *testing.T, routes []meshhttproute.Route) string {
	t.Helper()
	var lines []string
	for _, r := range routes {
		m, err := json.Marshal(r.Match)
		if err != nil {
			t.Fatal(err)
		}
		d, err := json.Marshal(r.Default)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(m)+" -> "+string(d))
	}
	return strings.Join(lines, "\n")
}

// TestMergeAndSort checks how the rules of several policies for one
// destination are merged and ordered.
func TestMergeAndSort(t *testing.T) {
	for _, c := range []struct {
		name  string
		specs []string // least to most specific
		want  string
	}{{
		name: "one policy: sorted by specificity, catch-all appended",
		specs: []string{`
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{headers: [{name: x-version, value: v2}]}]
    default: {backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v2}}]}
  - matches: [{path: {type: PathPrefix, value: /api}}, {path: {type: Exact, value: /login}}]
    default: {filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: "1"}]}}]}
  - matches: [{path: {type: PathPrefix, value: /api/v2}, method: POST}]
    default: {}
`},
		want: `{"path":{"value":"/login","type":"Exact"}} -> {"filters":[{"type":"RequestHeaderModifier","requestHeaderModifier":{"set":[{"name":"x-a","value":"1"}]}}]}
{"path":{"value":"/api/v2","type":"PathPrefix"},"method":"POST"} -> {}
{"path":{"value":"/api","type":"PathPrefix"}} -> {"filters":[{"type":"RequestHeaderModifier","requestHeaderModifier":{"set":[{"name":"x-a","value":"1"}]}}]}
{"path":{"value":"/","type":"PathPrefix"},"headers":[{"name":"x-version","value":"v2"}]} -> {"backendRefs":[{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v2"}}]}
{"path":{"value":"/","type":"PathPrefix"}} -> {}`,
	}, {
		name: "equal matches merge, the more specific policy wins field by field",
		specs: []string{`
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    default:
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-from, value: mesh}]}}]
      backendRefs: [{kind: MeshService, name: backend, weight: 1}]
`, `
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    default:
      backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 5}]
`},
		want: `{"path":{"value":"/a","type":"PathPrefix"}} -> {"filters":[{"type":"RequestHeaderModifier","requestHeaderModifier":{"add":[{"name":"x-from","value":"mesh"}]}}],"backendRefs":[{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v2"},"weight":5}]}
{"path":{"value":"/","type":"PathPrefix"}} -> {}`,
	}, {
		name: "ties keep the most specific policy's rules first, in written order",
		specs: []string{`
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{headers: [{name: x-a, value: "1"}]}]
    default: {backendRefs: [{kind: MeshService, name: a}]}
  - matches: [{headers: [{name: x-b, value: "1"}]}]
    default: {backendRefs: [{kind: MeshService, name: b}]}
`, `
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{headers: [{name: x-c, value: "1"}]}]
    default: {backendRefs: [{kind: MeshService, name: c}]}
  - matches: [{headers: [{name: x-a, value: "1"}]}]
    default: {backendRefs: [{kind: MeshService, name: a2}]}
`},
		want: `{"path":{"value":"/","type":"PathPrefix"},"headers":[{"name":"x-c","value":"1"}]} -> {"backendRefs":[{"kind":"MeshService","name":"c"}]}
{"path":{"value":"/","type":"PathPrefix"},"headers":[{"name":"x-a","value":"1"}]} -> {"backendRefs":[{"kind":"MeshService","name":"a2"}]}
{"path":{"value":"/","type":"PathPrefix"},"headers":[{"name":"x-b","value":"1"}]} -> {"backendRefs":[{"kind":"MeshService","name":"b"}]}
{"path":{"value":"/","type":"PathPrefix"}} -> {}`,
	}, {
		name: "an explicit catch-all is kept and not duplicated",
		specs: []string{`
to:
- targetRef: {kind: MeshService, name: backend}
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    default: {backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}, {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}]}
`},
		want: `{"path":{"value":"/","type":"PathPrefix"}} -> {"backendRefs":[{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v1"},"weight":90},{"kind":"MeshServiceSubset","name":"backend","tags":{"version":"v2"},"weight":10}]}`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			var specs []meshhttproute.Named
			for i, s := range c.specs {
				specs = append(specs, spec(t, string(rune('a'+i)), s))
			}
			rules, notes, err := meshhttproute.MergeRules(specs)
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != 0 {
				t.Fatalf("notes: %v", notes)
			}
			got := routesOf(t, meshhttproute.SortRules(rules["backend"]))
			if got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}
