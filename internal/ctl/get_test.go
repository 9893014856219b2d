package ctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const fixtures = `type: Mesh
name: other
---
type: MeshTimeout
name: t-default
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 10s
---
type: MeshTimeout
name: t-other
mesh: other
labels:
  team: payments
spec:
  targetRef:
    kind: Dataplane
    labels:
      app: web
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 20s
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.7
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
    - port: 9090
      tags:
        kuma.io/service: web-admin
`

func withFixtures(t *testing.T) *harness {
	h := newHarness(t)
	h.mustRun(fixtures, "apply", "-f", "-")
	return h
}

func TestGetOneInEachFormat(t *testing.T) {
	h := withFixtures(t)

	r := h.mustRun("", "get", "meshtimeout", "t-default", "-o", "json")
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, r.stdout)
	}
	if obj["type"] != "MeshTimeout" || obj["name"] != "t-default" || obj["mesh"] != "default" {
		t.Errorf("json object = %v", obj)
	}
	if !strings.HasPrefix(r.stdout, "{\n  \"type\": \"MeshTimeout\",") {
		t.Errorf("json should be indented and keep the API's field order:\n%s", r.stdout)
	}

	r = h.mustRun("", "get", "MeshTimeout", "t-other", "-m", "other", "-o", "yaml")
	obj = nil
	if err := yaml.Unmarshal([]byte(r.stdout), &obj); err != nil {
		t.Fatalf("-o yaml is not YAML: %v\n%s", err, r.stdout)
	}
	if obj["name"] != "t-other" || obj["labels"].(map[string]any)["team"] != "payments" {
		t.Errorf("yaml object = %v", obj)
	}
	if !strings.HasPrefix(r.stdout, "type: MeshTimeout\nmesh: other\nname: t-other\n") {
		t.Errorf("yaml should keep the API's field order:\n%s", r.stdout)
	}

	r = h.mustRun("", "get", "meshtimeouts", "t-other", "--mesh", "other")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "MESH NAME TARGETREF AGE" {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if got := strings.Fields(lines[1]); got[0] != "other" || got[1] != "t-other" || got[2] != "Dataplane" || got[3] != "app=web" {
		t.Errorf("row = %q", lines[1])
	}

	r = h.mustFail("", "get", "meshtimeout", "nope")
	wantContains(t, "stderr", r.stderr, `there is no MeshTimeout "nope" in mesh "default"`)
}

func TestGetListsAndTables(t *testing.T) {
	h := withFixtures(t)

	// json list: the API's {total, items, next} object.
	r := h.mustRun("", "get", "meshtimeouts", "-o", "json")
	var list struct {
		Total int              `json:"total"`
		Items []map[string]any `json:"items"`
		Next  *string          `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || len(list.Items) != 1 || list.Items[0]["name"] != "t-default" || list.Next != nil {
		t.Errorf("list in mesh default = %+v", list)
	}
	wantContains(t, "json list", r.stdout, `"total": 1`, `"next": null`)

	r = h.mustRun("", "get", "meshtimeouts", "-o", "yaml")
	wantContains(t, "yaml list", r.stdout, "total: 1\n", "items:\n", "next: null\n")
	if !strings.HasPrefix(r.stdout, "total: 1\nitems:\n- type: MeshTimeout\n") {
		t.Errorf("yaml list should keep the API's field order:\n%s", r.stdout)
	}

	// Across meshes.
	r = h.mustRun("", "get", "meshtimeouts", "--all-meshes")
	wantContains(t, "table", r.stdout, "t-default", "t-other", "Mesh ")
	r = h.mustRun("", "get", "meshtimeouts", "-m", "other")
	if strings.Contains(r.stdout, "t-default") || !strings.Contains(r.stdout, "t-other") {
		t.Errorf("-m other lists:\n%s", r.stdout)
	}
	r = h.mustRun("", "get", "meshtimeouts", "-A", "-l", "team=payments", "-o", "json")
	if !strings.Contains(r.stdout, "t-other") || strings.Contains(r.stdout, "t-default") {
		t.Errorf("label filter lists:\n%s", r.stdout)
	}

	// Meshes: global, with the mTLS column.
	r = h.mustRun("", "get", "meshes")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "NAME mTLS METRICS LOGGING TRACING AGE" || len(lines) != 3 {
		t.Fatalf("meshes table:\n%s", r.stdout)
	}
	wantContains(t, "meshes table", r.stdout, "default ", "other ")

	// Dataplanes: address and services.
	r = h.mustRun("", "get", "dataplanes")
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "MESH NAME ADDRESS SERVICES AGE" {
		t.Fatalf("dataplanes table:\n%s", r.stdout)
	}
	if got := strings.Fields(lines[1]); len(got) < 4 || got[2] != "10.0.0.7" || got[3] != "web,web-admin" {
		t.Errorf("dataplane row = %q", lines[1])
	}
}

func TestGetPaging(t *testing.T) {
	h := newHarness(t)
	var docs []string
	for _, n := range []string{"a", "b", "c"} {
		docs = append(docs, "type: Mesh\nname: "+n+"\n")
	}
	h.mustRun(strings.Join(docs, "---\n"), "apply", "-f", "-")

	r := h.mustRun("", "get", "meshes", "--size", "2")
	wantContains(t, "first page", r.stdout, "\nRerun command with --offset=2 argument to retrieve more resources\n")
	r = h.mustRun("", "get", "meshes", "--size", "2", "--offset", "2", "-o", "json")
	var page struct {
		Total int               `json:"total"`
		Items []json.RawMessage `json:"items"`
		Next  *string           `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatal(err)
	}
	if page.Total != 4 || len(page.Items) != 2 || page.Next != nil {
		t.Errorf("last page = total %d, %d items, next %v", page.Total, len(page.Items), page.Next)
	}
	// Without --size every page is fetched.
	r = h.mustRun("", "get", "meshes", "-o", "json")
	wantContains(t, "all meshes", r.stdout, `"total": 4`)
}

func TestGetErrors(t *testing.T) {
	h := newHarness(t)
	r := h.mustFail("", "get", "meshtimeoutz")
	wantContains(t, "stderr", r.stderr, `unknown resource type "meshtimeoutz"; valid types are: `, "meshtimeouts", "dataplanes", "global-secrets")
	r = h.mustFail("", "get", "meshservices")
	wantContains(t, "stderr", r.stderr, "MeshService is not supported yet by Trellis")
	r = h.mustFail("", "get", "meshes", "-o", "xml")
	wantContains(t, "stderr", r.stderr, `unknown output format "xml"`)

	dead := deadURL(t)
	r = h.mustFail("", "get", "meshes", "--api-url", dead)
	wantContains(t, "stderr", r.stderr, "could not connect to the control plane at "+dead+": connection refused", "trellis-cp run")
}

func TestDelete(t *testing.T) {
	h := withFixtures(t)
	r := h.mustRun("", "delete", "meshtimeout", "t-other", "-m", "other")
	if r.stdout != "deleted MeshTimeout \"t-other\"\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if h.exists("meshtimeouts", "other", "t-other") {
		t.Error("still there after delete")
	}
	r = h.mustFail("", "delete", "meshtimeout", "t-other", "-m", "other")
	wantContains(t, "stderr", r.stderr, `there is no MeshTimeout "t-other" in mesh "other"`)

	h.mustRun("", "delete", "mesh", "other")
	if h.exists("meshes", "", "other") {
		t.Error("mesh still there after delete")
	}
}

func TestVersionAndCompletion(t *testing.T) {
	h := newHarness(t)
	r := h.mustRun("", "version")
	wantContains(t, "version", r.stdout, "Client: trellisctl ", "Control plane: Trellis 9.9.9-test", "at "+h.url)

	h.env["TRELLIS_API_URL"] = deadURL(t)
	r = h.mustRun("", "version")
	wantContains(t, "version", r.stdout, "Control plane: not reachable at ")

	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r = h.mustRun("", "completion", shell)
		if !strings.Contains(r.stdout, "trellisctl") {
			t.Errorf("completion %s does not mention trellisctl", shell)
		}
	}
}
