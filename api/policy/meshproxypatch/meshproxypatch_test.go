package meshproxypatch_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshproxypatch"
)

func TestKeepsJSONPatchValues(t *testing.T) {
	res := mustDecode(t, `
type: MeshProxyPatch
name: p
mesh: default
spec:
  default:
    appendModifications:
      - cluster:
          operation: Patch
          match: {name: c}
          jsonPatches:
            - {op: add, path: /a, value: {b: [1, "x", true]}}
            - {op: replace, path: /n, value: null}
            - {op: move, from: /a, path: /b}
`)
	spec := res.Spec.(*meshproxypatch.Spec)
	patches := spec.Default.AppendModifications[0].Cluster.JsonPatches
	if got := string(patches[0].Value); got != `{"b":[1,"x",true]}` {
		t.Errorf("value = %s", got)
	}
	if got := string(patches[1].Value); got != "null" {
		t.Errorf("null value = %q", got)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, mods, field, reason string
	}{
		{"none", `
      - {}
`, "spec.default.appendModifications[0]", "Currently, 0"},
		{"add with match", `
      - cluster: {operation: Add, match: {name: c}, value: "name: c"}
`, "spec.default.appendModifications[0].cluster.match", "must not be defined"},
		{"add without value", `
      - listener: {operation: Add}
`, "spec.default.appendModifications[0].listener.value", "must be defined"},
		{"value not an object", `
      - listener: {operation: Add, value: "just text"}
`, "spec.default.appendModifications[0].listener.value", "not valid"},
		{"value not yaml", `
      - cluster: {operation: Add, value: "a: [b"}
`, "spec.default.appendModifications[0].cluster.value", "not valid"},
		{"remove with value", `
      - cluster: {operation: Remove, value: "name: c"}
`, "spec.default.appendModifications[0].cluster.value", "must not be defined"},
		{"patch with both", `
      - cluster: {operation: Patch, value: "name: c", jsonPatches: [{op: remove, path: /a}]}
`, "spec.default.appendModifications[0].cluster", "only one"},
		{"patch with neither", `
      - cluster: {operation: Patch}
`, "spec.default.appendModifications[0].cluster", "exactly one"},
		{"filter patch without name", `
      - networkFilter: {operation: Patch, value: "name: f"}
`, "spec.default.appendModifications[0].networkFilter.match.name", "must be defined"},
		{"filter op", `
      - networkFilter: {operation: Add, value: "name: f"}
`, "spec.default.appendModifications[0].networkFilter.operation", "invalid operation"},
		{"virtual host add with name", `
      - virtualHost: {operation: Add, match: {name: vh}, value: "name: vh"}
`, "spec.default.appendModifications[0].virtualHost.match.name", "must not be defined"},
		{"add without value", `
      - cluster: {operation: Patch, jsonPatches: [{op: add, path: /a}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].value", "must be defined"},
		{"remove with value", `
      - cluster: {operation: Patch, jsonPatches: [{op: remove, path: /a, value: 1}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].value", "allowed only"},
		{"copy without from", `
      - cluster: {operation: Patch, jsonPatches: [{op: copy, path: /a}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].from", "must be defined"},
		{"replace with from", `
      - cluster: {operation: Patch, jsonPatches: [{op: replace, path: /a, value: 1, from: /b}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].from", "allowed only"},
		{"missing path", `
      - cluster: {operation: Patch, jsonPatches: [{op: replace, value: 1}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].path", "must be defined"},
		{"remove root", `
      - cluster: {operation: Patch, jsonPatches: [{op: remove, path: /}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].path", "root path"},
		{"relative pointer", `
      - cluster: {operation: Patch, jsonPatches: [{op: replace, path: connectTimeout, value: 1s}]}
`, "spec.default.appendModifications[0].cluster.jsonPatches[0].path", "JSON pointer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest := "type: MeshProxyPatch\nname: p\nmesh: default\nspec:\n  default:\n    appendModifications:" + tc.mods
			expectViolation(t, manifest, tc.field, tc.reason)
		})
	}
}

func TestRejectsGatewayListenerTags(t *testing.T) {
	expectViolation(t, `
type: MeshProxyPatch
name: p
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: gw, tags: {port: http}}
  default:
    appendModifications: [{cluster: {operation: Remove}}]
`, "spec.targetRef.tags", "must not be set")
}
