package mesh_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
)

func TestMeshGatewayTestdata(t *testing.T) { checkTestdata(t, "meshgateway") }

func TestMeshGatewayValid(t *testing.T) {
	res := mustDecode(t, `
type: MeshGateway
mesh: default
name: gw
selectors:
- match:
    kuma.io/service: gw
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    hostname: '*.example.com'
    crossMesh: false
    tls:
      mode: TERMINATE
      certificates:
      - inlineString: "-----BEGIN CERTIFICATE-----"
      - file: /etc/certs/ecdsa.pem
      options: {}
    resources:
      connection_limit: 100
`)
	gw := res.Spec.(*mesh.MeshGateway)
	l := gw.Conf.Listeners[0]
	if l.Resources.Limit() != 100 || gw.IsCrossMesh() || l.EffectiveHostname() != "*.example.com" {
		t.Errorf("helpers: limit=%d crossMesh=%v", l.Resources.Limit(), gw.IsCrossMesh())
	}
}

const gwHead = `
type: MeshGateway
mesh: default
name: gw
selectors:
- match:
    kuma.io/service: gw
`

func TestMeshGatewayInvalid(t *testing.T) {
	runInvalid(t, []invalidCase{
		{name: "no selectors", field: "selectors", reason: "at least one", doc: `
type: MeshGateway
mesh: default
name: gw
conf:
  listeners:
  - port: 8080
    protocol: HTTP`},
		{name: "empty selector", field: "selectors[1].match", reason: "at least one tag", doc: `
type: MeshGateway
mesh: default
name: gw
selectors:
- match:
    kuma.io/service: gw
- {}
conf:
  listeners:
  - port: 8080
    protocol: HTTP`},
		{name: "no conf", field: "conf", reason: "cannot be empty", doc: gwHead},
		{name: "no listeners", field: "conf.listeners", reason: "cannot be empty", doc: gwHead + `
conf: {}`},
		{name: "missing protocol", field: "conf.listeners[0].protocol", reason: "cannot be empty", doc: gwHead + `
conf:
  listeners:
  - port: 8080`},
		{name: "lowercase protocol", field: "conf.listeners[0].protocol", reason: `unknown value "http"`, doc: gwHead + `
conf:
  listeners:
  - port: 8080
    protocol: http`},
		{name: "bad hostname", field: "conf.listeners[0].hostname", reason: "invalid hostname", doc: gwHead + `
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: Foo_Bar`},
		{name: "bad wildcard", field: "conf.listeners[0].hostname", reason: "wildcard", doc: gwHead + `
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: "*.*.example.com"`},
		{name: "unknown tls mode", field: "conf.listeners[0].tls.mode", reason: "unknown value", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    tls:
      mode: MUTUAL
      certificates:
      - secret: cert`},
		{name: "terminate without certificates", field: "conf.listeners[0].tls.certificates", reason: "cannot be empty", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    tls:
      mode: TERMINATE`},
		{name: "three certificates", field: "conf.listeners[0].tls.certificates", reason: "more than 2", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    tls:
      mode: TERMINATE
      certificates:
      - secret: a
      - secret: b
      - secret: c`},
		{name: "passthrough on https", field: "conf.listeners[0].tls.mode", reason: "not supported on HTTPS", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    tls:
      mode: PASSTHROUGH`},
		{name: "certificate without source", field: "conf.listeners[0].tls.certificates[0]", reason: "data source", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    tls:
      mode: TERMINATE
      certificates:
      - {}`},
		{name: "https with crossMesh", field: "conf.listeners[0].protocol", reason: "crossMesh", doc: gwHead + `
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    crossMesh: true`},
		{name: "listener with reserved tag", field: `conf.listeners[0].tags["kuma.io/zone"]`, reason: "must not be", doc: gwHead + `
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    tags:
      kuma.io/zone: east`},
		{name: "bad connection limit type", field: "conf.listeners[0].resources.connectionLimit", reason: "integer", doc: gwHead + `
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    resources:
      connectionLimit: lots`},
	})
}

func TestMeshGatewayConflicts(t *testing.T) {
	_, err := decode(t, gwHead+`
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    resources:
      connectionLimit: 10
  - port: 8080
    protocol: TCP
    hostname: a.example.com
    resources:
      connectionLimit: 20`)
	vs := violationsOf(t, err)
	want := map[string]bool{
		"conf.listeners[0].resources.connectionLimit": true,
		"conf.listeners[1].resources.connectionLimit": true,
		"conf.listeners[0]":                           true,
		"conf.listeners[1]":                           true,
	}
	if len(vs) != len(want) {
		t.Fatalf("got %+v", vs)
	}
	for _, v := range vs {
		if !want[v.Field] {
			t.Errorf("unexpected violation %+v", v)
		}
	}
}

func TestMeshGatewayDuplicateHostname(t *testing.T) {
	_, err := decode(t, gwHead+`
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: a.example.com
  - port: 8080
    protocol: HTTP
    hostname: b.example.com
  - port: 8080
    protocol: HTTP
    hostname: a.example.com`)
	vs := violationsOf(t, err)
	if len(vs) != 2 || vs[0].Field != "conf.listeners[0]" || vs[1].Field != "conf.listeners[2]" {
		t.Fatalf("want listeners 0 and 2 flagged, got %+v", vs)
	}
}
