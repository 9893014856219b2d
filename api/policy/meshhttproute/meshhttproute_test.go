package meshhttproute_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshhttproute"
)

// head is the start of every manifest below; rules follow it.
const head = `
type: MeshHTTPRoute
name: route
mesh: default
spec:
  to:
    - targetRef:
        kind: MeshService
        name: backend
      rules:
`

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, head+`
        - matches:
            - path: {type: PathPrefix, value: /v2}
              method: GET
          default:
            filters:
              - type: RequestMirror
                requestMirror:
                  percentage: "12.5"
                  backendRef: {kind: MeshService, name: shadow}
            backendRefs:
              - {kind: MeshService, name: backend-v2, weight: 0}
`)
	spec := res.Spec.(*meshhttproute.Spec)
	rule := spec.To[0].Rules[0]
	if rule.Matches[0].Path.Type != meshhttproute.PathPrefix || *rule.Matches[0].Method != "GET" {
		t.Errorf("match = %+v", rule.Matches[0])
	}
	mirror := (*rule.Default.Filters)[0].RequestMirror
	if !mirror.Percentage.IsString() || mirror.Percentage.String() != "12.5" {
		t.Errorf("percentage = %v", mirror.Percentage)
	}
	if w := (*rule.Default.BackendRefs)[0].Weight; w == nil || *w != 0 {
		t.Errorf("explicit weight 0 lost: %v", w)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, rules, field, reason string
	}{
		{"no matches", `
        - default: {}
`, "spec.to[0].rules[0].matches", "at least one"},
		{"prefix trailing slash", `
        - matches: [{path: {type: PathPrefix, value: /api/}}]
          default: {}
`, "spec.to[0].rules[0].matches[0].path.value", "trailing slash"},
		{"exact relative", `
        - matches: [{path: {type: Exact, value: api}}]
          default: {}
`, "spec.to[0].rules[0].matches[0].path.value", "absolute path"},
		{"unknown path type", `
        - matches: [{path: {type: Glob, value: /x}}]
          default: {}
`, "spec.to[0].rules[0].matches[0].path.type", "unknown value"},
		{"unknown method", `
        - matches: [{method: FETCH}]
          default: {}
`, "spec.to[0].rules[0].matches[0].method", "unknown value"},
		{"duplicate query param", `
        - matches:
            - queryParams:
                - {type: Exact, name: a, value: "1"}
                - {type: Exact, name: a, value: "2"}
          default: {}
`, "spec.to[0].rules[0].matches[0].queryParams[1].name", "multiple entries"},
		{"bad query regex", `
        - matches: [{queryParams: [{type: RegularExpression, name: a, value: "("}]}]
          default: {}
`, "spec.to[0].rules[0].matches[0].queryParams[0].value", "regular expression"},
		{"present with value", `
        - matches: [{headers: [{name: x-a, type: Present, value: b}]}]
          default: {}
`, "spec.to[0].rules[0].matches[0].headers[0].value", "must not be defined"},
		{"unknown filter", `
        - matches: [{path: {type: Exact, value: /}}]
          default:
            filters: [{type: Teleport}]
`, "spec.to[0].rules[0].default.filters[0].type", "unknown value"},
		{"empty header modifier", `
        - matches: [{path: {type: Exact, value: /}}]
          default:
            filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}}]
`, "spec.to[0].rules[0].default.filters[0].requestHeaderModifier", "at least one"},
		{"duplicate header", `
        - matches: [{path: {type: Exact, value: /}}]
          default:
            filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: x-a, value: "1"}]
                  remove: [x-a]
`, "spec.to[0].rules[0].default.filters[0].requestHeaderModifier.remove[0]", "duplicate header name"},
		{"redirect status", `
        - matches: [{path: {type: Exact, value: /}}]
          default:
            filters: [{type: RequestRedirect, requestRedirect: {statusCode: 200}}]
`, "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode", "unknown value"},
		{"redirect IP hostname", `
        - matches: [{path: {type: Exact, value: /}}]
          default:
            filters: [{type: RequestRedirect, requestRedirect: {hostname: 10.0.0.1}}]
`, "spec.to[0].rules[0].default.filters[0].requestRedirect.hostname", "IP address"},
		{"prefix rewrite after exact match", `
        - matches: [{path: {type: Exact, value: /a}}]
          default:
            filters:
              - type: URLRewrite
                urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}
`, "spec.to[0].rules[0].default.filters[0].urlRewrite.path.replacePrefixMatch", "path prefix"},
		{"hostToBackendHostname without gateway", `
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            filters: [{type: URLRewrite, urlRewrite: {hostToBackendHostname: true}}]
`, "spec.to[0].rules[0].default.filters[0].urlRewrite.hostToBackendHostname", "MeshGateway"},
		{"mirror percentage", `
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            filters:
              - type: RequestMirror
                requestMirror: {percentage: 150, backendRef: {kind: MeshService, name: b}}
`, "spec.to[0].rules[0].default.filters[0].requestMirror.percentage", "between 0 and 100"},
		{"mirror kind", `
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            filters:
              - type: RequestMirror
                requestMirror: {backendRef: {kind: Mesh}}
`, "spec.to[0].rules[0].default.filters[0].requestMirror.backendRef.kind", "not supported"},
		{"backendRef kind", `
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            backendRefs: [{kind: MeshGateway, name: gw}]
`, "spec.to[0].rules[0].default.backendRefs[0].kind", "not supported"},
		{"multizone without port", `
        - matches: [{path: {type: PathPrefix, value: /}}]
          default:
            backendRefs: [{kind: MeshMultiZoneService, name: backend}]
`, "spec.to[0].rules[0].default.backendRefs[0].port", "must be defined"},
		{"unknown field in match", `
        - matches: [{pathh: {type: Exact, value: /}}]
          default: {}
`, "spec.to[0].rules[0].matches[0].pathh", "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, head+tc.rules, tc.field, tc.reason)
		})
	}
}

func TestTopLevelTargetRef(t *testing.T) {
	expectViolation(t, `
type: MeshHTTPRoute
name: route
mesh: default
spec:
  targetRef: {kind: MeshHTTPRoute, name: other}
  to: []
`, "spec.targetRef.kind", "not supported")
	// Gateway routes take only Mesh destinations, need backends and may
	// limit host names.
	vs := violations(t, `
type: MeshHTTPRoute
name: route
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge, tags: {port: http-8080}}
  to:
    - targetRef: {kind: MeshService, name: backend}
      hostnames: ["*.example.com", "Bad_Host"]
      rules:
        - matches: [{path: {type: PathPrefix, value: /}}]
          default: {}
`)
	want := map[string]bool{
		"spec.to[0].targetRef.kind":               true,
		"spec.to[0].hostnames[1]":                 true,
		"spec.to[0].rules[0].default.backendRefs": true,
	}
	if len(vs) != len(want) {
		t.Errorf("violations = %+v", vs)
	}
	for _, v := range vs {
		if !want[v.Field] {
			t.Errorf("unexpected violation %+v", v)
		}
	}
}
