package inspect_test

import (
	"net/url"
	"strings"
	"testing"
)

const labeled = `type: Dataplane
mesh: default
name: labeled-1
labels:
  team: payments
networking:
  address: 10.0.0.7
  inbound:
  - port: 9090
    tags:
      kuma.io/service: pay
`

const retryByLabels = `type: MeshRetry
mesh: default
name: retry-payments
spec:
  targetRef:
    kind: Dataplane
    labels:
      team: payments
  to:
  - targetRef:
      kind: Mesh
    default:
      tcp:
        maxConnectAttempt: 2
`

func TestPolicyDataplanes(t *testing.T) {
	e := newEnv(t, nil)
	e.expect("PUT", "/meshes/default/dataplanes/labeled-1", labeled, 201)
	e.expect("PUT", "/meshes/default/meshtimeouts/timeout-all", timeoutAll, 201)
	e.expect("PUT", "/meshes/default/meshtimeouts/timeout-web", timeoutWeb, 201)
	e.expect("PUT", "/meshes/default/meshretries/retry-payments", retryByLabels, 201)
	e.expect("PUT", "/meshes/default/meshtrafficpermissions/allow-all", allowAll, 201)

	const web = "/meshes/default/meshtimeouts/timeout-web/_resources/dataplanes"
	list := e.expect("GET", web, "", 200)
	wantNames(t, "MeshService web", list, "default/web-1", "default/web-2")
	if list["total"].(float64) != 2 || list["next"] != nil {
		t.Errorf("total %v next %v", list["total"], list["next"])
	}
	it := list["items"].([]any)[0].(map[string]any)
	if it["type"] != "Dataplane" || len(it) != 3 {
		t.Errorf("item = %v, want type, mesh and name only", it)
	}

	// Paging: the total counts every selected dataplane.
	list = e.expect("GET", web+"?size=1", "", 200)
	wantNames(t, "first page", list, "default/web-1")
	next, _ := list["next"].(string)
	u, err := url.Parse(next)
	if err != nil || list["total"].(float64) != 2 || u.Path != web || u.Query().Get("offset") != "1" || u.Query().Get("size") != "1" {
		t.Fatalf("first page: total %v next %q", list["total"], next)
	}
	list = e.expect("GET", u.RequestURI(), "", 200)
	wantNames(t, "second page", list, "default/web-2")
	if list["next"] != nil || list["total"].(float64) != 2 {
		t.Errorf("second page: total %v next %v", list["total"], list["next"])
	}
	list = e.expect("GET", web+"?offset=5", "", 200)
	if items := list["items"].([]any); len(items) != 0 || list["total"].(float64) != 2 {
		t.Errorf("past the end: %v", list)
	}

	// A Mesh targetRef selects every proxy of the mesh, gateways too; the
	// lists' name and label filters apply.
	all := "/meshes/default/meshtimeouts/timeout-all/_resources/dataplanes"
	wantNames(t, "Mesh", e.expect("GET", all, "", 200),
		"default/gw-1", "default/labeled-1", "default/web-1", "default/web-2", "default/web-3")
	wantNames(t, "name=web-", e.expect("GET", all+"?name=web-", "", 200), "default/web-1", "default/web-2", "default/web-3")
	wantNames(t, "label filter", e.expect("GET", all+"?filter[labels.team]=payments", "", 200), "default/labeled-1")
	wantNames(t, "no targetRef", e.expect("GET", "/meshes/default/meshtrafficpermissions/allow-all/_resources/dataplanes", "", 200),
		"default/gw-1", "default/labeled-1", "default/web-1", "default/web-2", "default/web-3")

	// A Dataplane targetRef by labels; items carry the labels.
	list = e.expect("GET", "/meshes/default/meshretries/retry-payments/_resources/dataplanes", "", 200)
	wantNames(t, "Dataplane labels", list, "default/labeled-1")
	if labels, _ := list["items"].([]any)[0].(map[string]any)["labels"].(map[string]any); labels["team"] != "payments" {
		t.Errorf("labels = %v", list["items"])
	}

	// Errors.
	out := e.expect("GET", "/meshes/default/meshtimeouts/nope/_resources/dataplanes", "", 404)
	if !strings.Contains(out["detail"].(string), `MeshTimeout "nope"`) {
		t.Errorf("missing policy: %v", out)
	}
	out = e.expect("GET", "/meshes/ghost/meshtimeouts/timeout-all/_resources/dataplanes", "", 404)
	if !strings.Contains(out["detail"].(string), `mesh "ghost"`) {
		t.Errorf("missing mesh: %v", out)
	}
	e.expect("GET", "/meshes/default/dataplanes/web-1/_resources/dataplanes", "", 404)
	e.expect("GET", "/meshes/default/nonsense/x/_resources/dataplanes", "", 404)
	e.expect("GET", "/meshes/default/meshservices/x/_resources/dataplanes", "", 400)
	e.expect("GET", web+"?size=0", "", 400)
	// The other mesh's proxies are never listed.
	e.expect("PUT", "/meshes/other/meshtimeouts/timeout-all", strings.Replace(timeoutAll, "mesh: default", "mesh: other", 1), 201)
	wantNames(t, "other mesh", e.expect("GET", "/meshes/other/meshtimeouts/timeout-all/_resources/dataplanes", "", 200), "other/db-1")
}
