package inspect_test

import (
	"encoding/json"
	"reflect"
	"testing"
)

const client = `type: Dataplane
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
      kuma.io/service: backend
  - address: 127.0.0.2
    port: 10002
    tags:
      kuma.io/service: db
`

const timeoutAll = `type: MeshTimeout
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
`

const timeoutBackend = `type: MeshTimeout
mesh: default
name: timeout-backend
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      http:
        requestTimeout: 500ms
`

// timeoutWeb selects the web proxies only.
const timeoutWeb = `type: MeshTimeout
mesh: default
name: timeout-web
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionTimeout: 1s
`

const retryBackend = `type: MeshRetry
mesh: default
name: retry-backend
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      http:
        numRetries: 3
`

type rulesAnswer struct {
	Rules []struct {
		Type     string `json:"type"`
		Policies []struct {
			Name string `json:"name"`
		} `json:"policies"`
		Inbounds []struct {
			Port      uint32     `json:"port"`
			FromRules []ruleJSON `json:"fromRules"`
		} `json:"inbounds"`
		Outbounds []struct {
			Address string            `json:"address"`
			Port    uint32            `json:"port"`
			Service string            `json:"service"`
			Subset  map[string]string `json:"subset"`
			Conf    json.RawMessage   `json:"conf"`
			Origins []string          `json:"origins"`
		} `json:"outbounds"`
		ToRules []ruleJSON `json:"toRules"`
	} `json:"rules"`
}

type ruleJSON struct {
	Subset  map[string]string `json:"subset"`
	Conf    json.RawMessage   `json:"conf"`
	Origins []string          `json:"origins"`
}

func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v: %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// TestRulesTrafficPolicies checks the per-inbound and per-outbound view of
// the traffic policies: merged confs and the policies they come from.
func TestRulesTrafficPolicies(t *testing.T) {
	e := newEnv(t, nil)
	e.expect("PUT", "/meshes/default/dataplanes/client-1", client, 201)
	e.expect("PUT", "/meshes/default/meshtimeouts/timeout-all", timeoutAll, 201)
	e.expect("PUT", "/meshes/default/meshtimeouts/timeout-backend", timeoutBackend, 201)
	e.expect("PUT", "/meshes/default/meshtimeouts/timeout-web", timeoutWeb, 201)
	e.expect("PUT", "/meshes/default/meshretries/retry-backend", retryBackend, 201)

	_, _, body := e.raw("GET", "/meshes/default/dataplanes/client-1/_rules", "")
	var got rulesAnswer
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	byType := map[string]int{}
	var order []string
	for i, kr := range got.Rules {
		byType[kr.Type] = i
		order = append(order, kr.Type)
	}
	wantOrder := []string{"MeshTrafficPermission", "MeshTimeout", "MeshRetry", "MeshCircuitBreaker", "MeshHealthCheck",
		"MeshFaultInjection", "MeshRateLimit", "MeshLoadBalancingStrategy", "MeshTLS", "MeshHTTPRoute", "MeshTCPRoute"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("kinds = %v, want %v", order, wantOrder)
	}

	mt := got.Rules[byType["MeshTimeout"]]
	if len(mt.Policies) != 2 || mt.Policies[0].Name != "timeout-all" || mt.Policies[1].Name != "timeout-backend" {
		t.Errorf("MeshTimeout policies = %+v, want timeout-all, timeout-backend", mt.Policies)
	}
	if len(mt.Inbounds) != 1 || len(mt.Inbounds[0].FromRules) != 1 {
		t.Fatalf("MeshTimeout inbounds = %s", body)
	}
	from := mt.Inbounds[0].FromRules[0]
	sameJSON(t, "inbound conf", from.Conf, `{"idleTimeout": "1h"}`)
	if len(from.Subset) != 0 || !reflect.DeepEqual(from.Origins, []string{"timeout-all"}) {
		t.Errorf("inbound rule = %+v", from)
	}
	if len(mt.Outbounds) != 2 {
		t.Fatalf("MeshTimeout outbounds = %s", body)
	}
	be, db := mt.Outbounds[0], mt.Outbounds[1]
	if be.Service != "backend" || be.Address != "127.0.0.1" || be.Port != 10001 ||
		be.Subset["kuma.io/service"] != "backend" || !reflect.DeepEqual(be.Origins, []string{"timeout-all", "timeout-backend"}) {
		t.Errorf("backend outbound = %+v", be)
	}
	sameJSON(t, "backend timeout", be.Conf, `{"connectionTimeout": "5s", "http": {"requestTimeout": "500ms"}}`)
	if db.Service != "db" || db.Address != "127.0.0.2" || db.Port != 10002 || db.Subset == nil || len(db.Subset) != 0 ||
		!reflect.DeepEqual(db.Origins, []string{"timeout-all"}) {
		t.Errorf("db outbound = %+v", db)
	}
	sameJSON(t, "db timeout", db.Conf, `{"connectionTimeout": "5s", "http": {"requestTimeout": "15s"}}`)

	mr := got.Rules[byType["MeshRetry"]]
	if len(mr.Outbounds) != 2 || !reflect.DeepEqual(mr.Outbounds[0].Origins, []string{"retry-backend"}) {
		t.Fatalf("MeshRetry outbounds = %+v", mr.Outbounds)
	}
	sameJSON(t, "backend retry", mr.Outbounds[0].Conf, `{"http": {"numRetries": 3}}`)
	if string(mr.Outbounds[1].Conf) != "null" || mr.Outbounds[1].Subset != nil || mr.Outbounds[1].Origins == nil || len(mr.Outbounds[1].Origins) != 0 {
		t.Errorf("db retry = %+v, want conf null, no subset, origins []", mr.Outbounds[1])
	}

	// Kinds without to[] list no outbounds; kinds no policy selects list
	// the outbounds with nothing applied.
	if mtp := got.Rules[byType["MeshTrafficPermission"]]; mtp.Outbounds == nil || len(mtp.Outbounds) != 0 {
		t.Errorf("MeshTrafficPermission outbounds = %+v, want []", mtp.Outbounds)
	}
	cb := got.Rules[byType["MeshCircuitBreaker"]]
	if len(cb.Policies) != 0 || len(cb.Outbounds) != 2 || string(cb.Outbounds[0].Conf) != "null" {
		t.Errorf("MeshCircuitBreaker = %+v", cb)
	}

	// web-1 is selected by timeout-all and timeout-web, and has no outbounds.
	_, _, body = e.raw("GET", "/meshes/default/dataplanes/web-1/_rules", "")
	got = rulesAnswer{}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	mt = got.Rules[byType["MeshTimeout"]]
	if len(mt.Policies) != 2 || mt.Policies[0].Name != "timeout-all" || mt.Policies[1].Name != "timeout-web" || mt.Outbounds == nil || len(mt.Outbounds) != 0 {
		t.Errorf("web-1 MeshTimeout = %+v", mt)
	}
	if len(mt.ToRules) != 1 {
		t.Fatalf("web-1 to rules = %+v", mt.ToRules)
	}
	sameJSON(t, "web-1 to rule", mt.ToRules[0].Conf, `{"connectionTimeout": "1s", "http": {"requestTimeout": "15s"}}`)
}
