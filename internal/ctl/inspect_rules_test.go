package ctl_test

import (
	"encoding/json"
	"strings"
	"testing"
)

const inspectTrafficPolicies = `type: Dataplane
mesh: default
name: client-1
networking:
  address: 10.0.0.5
  inbound:
    - port: 8080
      tags:
        kuma.io/service: client
  outbound:
    - port: 10001
      tags:
        kuma.io/service: web
    - port: 10002
      tags:
        kuma.io/service: api
---
type: MeshTimeout
mesh: default
name: timeout-all
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        connectionTimeout: 5s
        http:
          requestTimeout: 15s
  from:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 1h
---
type: MeshTimeout
mesh: default
name: timeout-web
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
    - targetRef:
        kind: MeshService
        name: web
      default:
        http:
          requestTimeout: 500ms
---
type: MeshRetry
mesh: default
name: retry-web
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: web
      default:
        http:
          numRetries: 3
`

// section returns the lines of out from the one starting with head to the
// next blank line.
func section(out, head string) string {
	i := strings.Index(out, "\n"+head)
	if i < 0 {
		return ""
	}
	rest := out[i+1:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j+1]
	}
	return rest
}

func TestInspectDataplaneRules(t *testing.T) {
	h := newInspectHarness(t, nil)
	h.mustRun(inspectTrafficPolicies, "apply", "-f", "-")

	r := h.mustRun("", "inspect", "dataplane", "client-1", "--type", "rules")
	if !strings.HasPrefix(r.stdout, `Dataplane "client-1" in mesh "default" (mTLS off).`) {
		t.Errorf("heading:\n%s", r.stdout)
	}
	wantTimeout := `MeshTimeout (policies: timeout-all, timeout-web)
  inbound 10.0.0.5:8080 (kuma.io/service=client)
    from any client (from timeout-all):
        idleTimeout: 1h
  outbound 127.0.0.1:10001 to web [tcp] (from timeout-all, timeout-web):
      connectionTimeout: 5s
      http:
        requestTimeout: 500ms
  outbound 127.0.0.1:10002 to api [tcp] (from timeout-all):
      connectionTimeout: 5s
      http:
        requestTimeout: 15s
`
	if got := section(r.stdout, "MeshTimeout"); got != wantTimeout {
		t.Errorf("MeshTimeout section:\n%s\nwant:\n%s\nin:\n%s", got, wantTimeout, r.stdout)
	}
	// MeshRetry has no from[]: no inbound lines.
	wantRetry := `MeshRetry (policies: retry-web)
  outbound 127.0.0.1:10001 to web [tcp] (from retry-web):
      http:
        numRetries: 3
  outbound 127.0.0.1:10002 to api [tcp]: no to[] section applies
`
	if got := section(r.stdout, "MeshRetry"); got != wantRetry {
		t.Errorf("MeshRetry section:\n%s\nwant:\n%s", got, wantRetry)
	}
	wantContains(t, "unused kinds", r.stdout,
		"\nNo policy of these kinds selects the proxy: MeshTrafficPermission, MeshCircuitBreaker, MeshHealthCheck, ")

	// A proxy without outbounds shows the to[] rules by destination; a
	// MeshTrafficPermission shows its from[] rules and the mTLS caveat.
	h.mustRun(inspectPermissions, "apply", "-f", "-")
	r = h.mustRun("", "inspect", "dataplane", "web-1", "--type", "rules")
	wantContains(t, "web-1", r.stdout,
		"MeshTimeout (policies: timeout-all)\n",
		"  the proxy lists no outbounds; to[] rules by destination (the first that matches applies):\n"+
			"    to any destination (from timeout-all):\n        connectionTimeout: 5s\n",
		"MeshTrafficPermission (policies: allow-all, web-from-api)\n",
		`  mTLS is off in mesh "default": MeshTrafficPermission is not enforced`,
		"    from clients {kuma.io/service=api} (from allow-all, web-from-api):\n        action: Deny\n",
		"    from any client (from allow-all):\n        action: Allow\n")
	wantContains(t, "web-1 retry", section(r.stdout, "MeshRetry"), "    to {kuma.io/service=web} (from retry-web):\n        http:\n          numRetries: 3\n")

	// -o json and yaml print the API's answer.
	r = h.mustRun("", "inspect", "dataplane", "client-1", "--type", "rules", "-o", "json")
	var got struct {
		Rules []struct {
			Type      string `json:"type"`
			Outbounds []struct {
				Service string   `json:"service"`
				Origins []string `json:"origins"`
			} `json:"outbounds"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if len(got.Rules) < 2 || got.Rules[1].Type != "MeshTimeout" || len(got.Rules[1].Outbounds) != 2 ||
		strings.Join(got.Rules[1].Outbounds[0].Origins, ",") != "timeout-all,timeout-web" {
		t.Errorf("-o json: %+v", got)
	}
	r = h.mustRun("", "inspect", "dataplane", "client-1", "--type", "rules", "-o", "yaml")
	wantContains(t, "-o yaml", r.stdout, "dataplane: client-1", "type: MeshRetry", "service: web", "numRetries: 3")

	// Route kinds show their merged rules, and why they do not apply.
	h.mustRun(`type: MeshHTTPRoute
mesh: default
name: route-web
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: web
      rules:
        - matches:
            - path:
                type: Exact
                value: /health
          default:
            backendRefs:
              - kind: MeshService
                name: api
`, "apply", "-f", "-")
	r = h.mustRun("", "inspect", "dataplane", "client-1", "--type", "rules")
	wantContains(t, "http route", section(r.stdout, "MeshHTTPRoute"),
		"  outbound 127.0.0.1:10001 to web [tcp] (from route-web):\n      rules:\n      - matches:\n        - path:\n            value: /health\n            type: Exact\n",
		"    not applied: the outbound's protocol is tcp; MeshHTTPRoute routes http, http2 and grpc outbounds\n",
		"  outbound 127.0.0.1:10002 to api [tcp]: no to[] section applies\n")

	r = h.mustFail("", "inspect", "dataplane", "nope", "--type", "rules")
	wantContains(t, "missing dataplane", r.stderr, `there is no Dataplane "nope" in mesh "default"`)
	r = h.mustFail("", "inspect", "dataplane", "client-1", "--type", "rules", "-o", "table")
	wantContains(t, "bad output", r.stderr, "yaml or json")
	r = h.mustRun("", "__complete", "inspect", "dataplane", "web-1", "--type", "")
	wantContains(t, "--type values", r.stdout, "rules\n")
}

func TestInspectPolicyDataplanes(t *testing.T) {
	h := newInspectHarness(t, nil)
	h.mustRun(inspectTrafficPolicies, "apply", "-f", "-")

	r := h.mustRun("", "inspect", "meshtimeout", "timeout-web")
	got := rows(r.stdout)
	if strings.Join(got["header"], "|") != "TYPE|MESH|NAME|LABELS" ||
		strings.Join(got["default"], "|") != "Dataplane|default|client-1|-" {
		t.Errorf("table:\n%s", r.stdout)
	}
	wantContains(t, "total", r.stdout, "\nTotal: 1\n")

	r = h.mustRun("", "inspect", "meshtimeouts", "timeout-all")
	var names []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "Dataplane" {
			names = append(names, f[2])
		}
	}
	if strings.Join(names, " ") != "api-1 client-1 gw-1 web-1 web-2" {
		t.Errorf("Mesh targetRef selects %v:\n%s", names, r.stdout)
	}
	wantContains(t, "total", r.stdout, "\nTotal: 5\n")

	r = h.mustRun("", "inspect", "meshtimeout", "timeout-all", "--size", "2")
	wantContains(t, "--size 2", r.stdout, "api-1", "client-1", "Total: 5", "--offset=2")
	r = h.mustRun("", "inspect", "meshtimeout", "timeout-all", "--name-contains", "web", "-o", "json")
	var list struct {
		Total int `json:"total"`
		Items []struct {
			Type string `json:"type"`
			Mesh string `json:"mesh"`
			Name string `json:"name"`
		} `json:"items"`
		Next *string `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if list.Total != 2 || len(list.Items) != 2 || list.Items[0].Name != "web-1" || list.Items[1].Type != "Dataplane" || list.Next != nil {
		t.Errorf("-o json: %+v", list)
	}
	r = h.mustRun("", "inspect", "meshretry", "retry-web", "-o", "yaml")
	wantContains(t, "-o yaml", r.stdout, "total: 5", "name: client-1", "type: Dataplane")

	r = h.mustFail("", "inspect", "meshtimeout", "nope")
	wantContains(t, "missing policy", r.stderr, `MeshTimeout "nope"`)
	r = h.mustFail("", "inspect", "meshtimeout", "timeout-all", "-m", "ghost")
	wantContains(t, "missing mesh", r.stderr, `mesh "ghost"`)
	r = h.mustRun("", "__complete", "inspect", "")
	wantContains(t, "inspect subcommands", r.stdout, "meshtimeout\t", "meshtrafficpermission\t")
}
