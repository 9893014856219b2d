package inspect_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/apiserver/inspect"
)

const allowAll = `type: MeshTrafficPermission
mesh: default
name: allow-all
labels:
  kuma.io/origin: global
spec:
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Allow
`

const denyAdmin = `type: MeshTrafficPermission
mesh: default
name: deny-admin
spec:
  targetRef:
    kind: MeshService
    name: web
  from:
  - targetRef:
      kind: MeshService
      name: web-admin
    default:
      action: Deny
  - targetRef:
      kind: MeshSubset
      tags:
        version: v2
    default:
      action: Deny
`

func TestRules(t *testing.T) {
	e := newEnv(t, nil)
	e.expect("PUT", "/meshes/default/meshtrafficpermissions/allow-all", allowAll, 201)
	e.expect("PUT", "/meshes/default/meshtrafficpermissions/deny-admin", denyAdmin, 201)

	status, ctype, body := e.raw("GET", "/meshes/default/dataplanes/web-1/_rules", "")
	if status != 200 || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("status %d, content type %q: %s", status, ctype, body)
	}
	var got struct {
		Mesh        string `json:"mesh"`
		Dataplane   string `json:"dataplane"`
		MTLSEnabled bool   `json:"mtlsEnabled"`
		Rules       []struct {
			Type     string `json:"type"`
			Policies []struct{ Name, Origin string }
			Inbounds []struct {
				Port      uint32 `json:"port"`
				Policies  []struct{ Name string }
				FromRules []struct {
					Subset  map[string]string `json:"subset"`
					Conf    map[string]any    `json:"conf"`
					Origins []string          `json:"origins"`
				} `json:"fromRules"`
				Permissions []struct {
					Principal map[string]any `json:"principal"`
					Action    string         `json:"action"`
					Origins   []string       `json:"origins"`
				} `json:"permissions"`
				Notes []string `json:"notes"`
			} `json:"inbounds"`
			ToRules []any `json:"toRules"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if got.Mesh != "default" || got.Dataplane != "web-1" || got.MTLSEnabled {
		t.Fatalf("header = %s/%s mtls %v", got.Mesh, got.Dataplane, got.MTLSEnabled)
	}
	if len(got.Rules) != len(inspect.RuleKinds) || got.Rules[0].Type != "MeshTrafficPermission" {
		t.Fatalf("rules = %s", body)
	}
	kr := got.Rules[0]
	if len(kr.Policies) != 2 || kr.Policies[0].Name != "allow-all" || kr.Policies[0].Origin != "global" || kr.Policies[1].Name != "deny-admin" {
		t.Fatalf("policies = %+v", kr.Policies)
	}
	if len(kr.Inbounds) != 1 || kr.Inbounds[0].Port != 8080 {
		t.Fatalf("inbounds = %s", body)
	}
	in := kr.Inbounds[0]
	// Rules: {web-admin, version=v2}, {web-admin}, {version=v2}, {}.
	if len(in.FromRules) != 4 || in.FromRules[1].Subset["kuma.io/service"] != "web-admin" || in.FromRules[1].Conf["action"] != "Deny" {
		t.Fatalf("from rules = %+v", in.FromRules)
	}
	if len(in.Permissions) != 2 ||
		in.Permissions[0].Principal["exact"] != "spiffe://default/web-admin" || in.Permissions[0].Action != "Deny" ||
		in.Permissions[1].Principal["any"] != true || in.Permissions[1].Action != "Allow" {
		t.Fatalf("permissions = %+v", in.Permissions)
	}
	if len(in.Notes) != 2 {
		t.Fatalf("notes = %q, want the two subsets with a version tag", in.Notes)
	}
	if kr.ToRules == nil {
		t.Fatal("toRules is null, want []")
	}

	// A proxy no policy selects: no permissions, so everything is denied.
	e.expect("DELETE", "/meshes/default/meshtrafficpermissions/allow-all", "", 200)
	out := e.expect("GET", "/meshes/default/dataplanes/web-3/_rules", "", 200)
	inbound := out["rules"].([]any)[0].(map[string]any)["inbounds"].([]any)[0].(map[string]any)
	if perms, ok := inbound["permissions"].([]any); !ok || len(perms) != 0 {
		t.Fatalf("permissions of an unselected inbound = %v, want []", inbound["permissions"])
	}
}

func TestRulesNotFound(t *testing.T) {
	e := newEnv(t, nil)
	out := e.expect("GET", "/meshes/default/dataplanes/nope/_rules", "", 404)
	if !strings.Contains(out["detail"].(string), `"nope"`) {
		t.Fatalf("404 detail = %v", out["detail"])
	}
}
