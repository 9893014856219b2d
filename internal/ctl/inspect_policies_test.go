package ctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/apiserver/inspect"
)

const inspectPermissions = `type: MeshTrafficPermission
mesh: default
name: allow-all
spec:
  from:
    - targetRef:
        kind: Mesh
      default:
        action: Allow
---
type: MeshTrafficPermission
mesh: default
name: web-from-api
spec:
  targetRef:
    kind: MeshService
    name: web
  from:
    - targetRef:
        kind: MeshService
        name: api
      default:
        action: Deny
    - targetRef:
        kind: MeshSubset
        tags:
          version: v2
      default:
        action: AllowWithShadowDeny
`

func TestInspectDataplanePolicies(t *testing.T) {
	h := newInspectHarness(t, nil)

	r := h.mustRun("", "inspect", "dataplane", "web-1", "--type", "policies")
	wantContains(t, "no policy", r.stdout, "MeshTrafficPermission\n", `mTLS is off in mesh "default"`,
		"inbound 10.0.0.1:8080 (kuma.io/service=web)", "no MeshTrafficPermission selects this inbound", "every client is denied",
		"\nMeshTimeout: no policy selects this proxy\n", "\nMeshTCPRoute: no policy selects this proxy\n")

	h.mustRun(inspectPermissions, "apply", "-f", "-")
	r = h.mustRun("", "inspect", "dataplane", "web-1", "--type", "policies")
	wantContains(t, "policies", r.stdout,
		"policies (least to most specific): allow-all, web-from-api\n",
		"the first that matches the client decides",
		"not enforced: clients {version=v2} (AllowWithShadowDeny, from [allow-all web-from-api]) are skipped")
	var table []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "#" || f[0] == "1" || f[0] == "2") {
			table = append(table, strings.Join(f, " "))
		}
	}
	want := []string{
		"# CLIENT ACTION FROM",
		"1 spiffe://default/api Deny allow-all, web-from-api",
		"2 any client in the mesh Allow allow-all",
	}
	if strings.Join(table, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules table:\n%s\nwant:\n%s\nin:\n%s", strings.Join(table, "\n"), strings.Join(want, "\n"), r.stdout)
	}

	r = h.mustRun("", "inspect", "dataplane", "api-1", "--type", "policies", "-o", "json")
	var got struct {
		Dataplane string `json:"dataplane"`
		Rules     []struct {
			Type     string `json:"type"`
			Inbounds []struct {
				Permissions []struct {
					Action string `json:"action"`
				} `json:"permissions"`
			} `json:"inbounds"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if got.Dataplane != "api-1" || len(got.Rules) != len(inspect.RuleKinds) || got.Rules[0].Type != "MeshTrafficPermission" || len(got.Rules[0].Inbounds) != 1 ||
		len(got.Rules[0].Inbounds[0].Permissions) != 1 || got.Rules[0].Inbounds[0].Permissions[0].Action != "Allow" {
		t.Errorf("-o json: %+v", got)
	}
	r = h.mustRun("", "inspect", "dataplane", "api-1", "--type", "policies", "-o", "yaml")
	wantContains(t, "-o yaml", r.stdout, "dataplane: api-1", "type: MeshTrafficPermission")

	r = h.mustFail("", "inspect", "dataplane", "nope", "--type", "policies")
	wantContains(t, "missing dataplane", r.stderr, `there is no Dataplane "nope" in mesh "default"`)
	r = h.mustFail("", "inspect", "dataplane", "web-1", "--type", "policies", "-o", "table")
	wantContains(t, "bad output", r.stderr, "yaml or json")
	r = h.mustRun("", "__complete", "inspect", "dataplane", "web-1", "--type", "")
	wantContains(t, "--type values", r.stdout, "policies\n")
}
