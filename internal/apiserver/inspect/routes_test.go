package inspect_test

import (
	"encoding/json"
	"reflect"
	"testing"
)

// backendHTTP makes backend an http service (its inbound's protocol).
const backendHTTP = `type: Dataplane
mesh: default
name: backend-1
networking:
  address: 10.0.0.8
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
`

const httpRoute = `type: MeshHTTPRoute
mesh: default
name: route-backend
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
  - targetRef:
      kind: MeshService
      name: backend
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: backend
          tags:
            version: v2
          weight: 100
`

const tcpRoutes = `type: MeshTCPRoute
mesh: default
name: tcp-all
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: backend
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: backend-canary
  - targetRef:
      kind: MeshService
      name: db
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: db-replica
          weight: 10
        - kind: MeshService
          name: db
          weight: 90
`

// TestRulesRoutes checks that route kinds report, per outbound, the rules
// their packages merge (not subset-merged defaults), with the protocol
// that decides whether they apply.
func TestRulesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	e.expect("PUT", "/meshes/default/dataplanes/client-1", client, 201)
	e.expect("PUT", "/meshes/default/dataplanes/backend-1", backendHTTP, 201)
	e.expect("PUT", "/meshes/default/meshhttproutes/route-backend", httpRoute, 201)
	e.expect("PUT", "/meshes/default/meshtcproutes/tcp-all", tcpRoutes, 201)

	_, _, body := e.raw("GET", "/meshes/default/dataplanes/client-1/_rules", "")
	var got struct {
		Rules []struct {
			Type      string `json:"type"`
			Outbounds []struct {
				Service  string          `json:"service"`
				Protocol string          `json:"protocol"`
				Conf     json.RawMessage `json:"conf"`
				Origins  []string        `json:"origins"`
				Notes    []string        `json:"notes"`
			} `json:"outbounds"`
			ToRules []ruleJSON `json:"toRules"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	kinds := map[string]int{}
	for i, kr := range got.Rules {
		kinds[kr.Type] = i
	}
	hr := got.Rules[kinds["MeshHTTPRoute"]]
	if len(hr.Outbounds) != 2 {
		t.Fatalf("MeshHTTPRoute outbounds: %s", body)
	}
	be, db := hr.Outbounds[0], hr.Outbounds[1]
	if be.Service != "backend" || be.Protocol != "http" || !reflect.DeepEqual(be.Origins, []string{"route-backend"}) || len(be.Notes) != 0 {
		t.Errorf("http route to backend = %+v", be)
	}
	sameJSON(t, "backend routes", be.Conf, `{"rules": [
		{"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
		 "default": {"backendRefs": [{"kind": "MeshServiceSubset", "name": "backend", "tags": {"version": "v2"}, "weight": 100}]}},
		{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "default": {}}]}`)
	if db.Protocol != "tcp" || string(db.Conf) != "null" || len(db.Origins) != 0 {
		t.Errorf("http route to db = %+v", db)
	}
	if len(hr.ToRules) != 1 || hr.ToRules[0].Subset["kuma.io/service"] != "backend" {
		t.Errorf("MeshHTTPRoute to rules = %+v", hr.ToRules)
	}

	tr := got.Rules[kinds["MeshTCPRoute"]]
	be, db = tr.Outbounds[0], tr.Outbounds[1]
	if !reflect.DeepEqual(be.Origins, []string{"tcp-all"}) || len(be.Notes) != 1 || be.Notes[0] != "not applied: a MeshHTTPRoute routes this outbound" {
		t.Errorf("tcp route to backend = %+v", be)
	}
	if !reflect.DeepEqual(db.Origins, []string{"tcp-all"}) || len(db.Notes) != 0 {
		t.Errorf("tcp route to db = %+v", db)
	}
	sameJSON(t, "db routes", db.Conf, `{"rules": [{"default": {"backendRefs": [
		{"kind": "MeshService", "name": "db-replica", "weight": 10}, {"kind": "MeshService", "name": "db", "weight": 90}]}}]}`)
	if len(tr.ToRules) != 2 || tr.ToRules[0].Subset["kuma.io/service"] != "backend" || tr.ToRules[1].Subset["kuma.io/service"] != "db" {
		t.Errorf("MeshTCPRoute to rules = %+v", tr.ToRules)
	}

	// Other kinds carry the protocol too.
	if mt := got.Rules[kinds["MeshTimeout"]]; mt.Outbounds[0].Protocol != "http" || mt.Outbounds[1].Protocol != "tcp" {
		t.Errorf("MeshTimeout outbounds = %+v", mt.Outbounds)
	}
}
