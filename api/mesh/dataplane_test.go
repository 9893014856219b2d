package mesh_test

import (
	"slices"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
)

func TestDataplaneTestdata(t *testing.T) { checkTestdata(t, "dataplane") }

func TestDataplaneValid(t *testing.T) {
	for name, doc := range map[string]string{
		"multiple inbounds with explicit zero health": `
type: Dataplane
mesh: default
name: dp-1
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    servicePort: 8080
    serviceAddress: 10.0.0.2
    tags:
      kuma.io/service: web
    health:
      ready: true
  - port: 8081
    address: 10.0.0.1
    state: NotReady
    tags:
      kuma.io/service: web-admin
      kuma.io/protocol: http2
`,
		"delegated gateway with explicit type and reachable backends": `
type: Dataplane
mesh: default
name: gw-1
networking:
  address: fe80::1
  gateway:
    type: DELEGATED
    tags:
      kuma.io/service: kong
      kuma.io/protocol: tcp
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
    directAccessServices: ['*']
    reachableBackends:
      refs:
      - kind: MeshService
        name: backend
        port: 8080
      - kind: MeshExternalService
        labels:
          team: payments
`,
		"outbound to external service by labels": `
type: Dataplane
mesh: default
name: dp-2
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
  outbound:
  - port: 10000
    backendRef:
      kind: MeshExternalService
      labels:
        kuma.io/display-name: httpbin
`,
	} {
		t.Run(name, func(t *testing.T) { mustDecode(t, doc) })
	}
}

func TestDataplaneHelpers(t *testing.T) {
	res := mustDecode(t, `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
      kuma.io/protocol: http
  - port: 8081
    servicePort: 9081
    tags:
      kuma.io/service: web
  - port: 8082
    tags:
      kuma.io/service: admin
`)
	dp := res.Spec.(*mesh.Dataplane)
	if got := dp.ServiceNames(); !slices.Equal(got, []string{"web", "admin"}) {
		t.Errorf("ServiceNames = %v", got)
	}
	in := dp.Networking.Inbound
	if in[0].Protocol() != mesh.ProtocolHTTP || in[1].Protocol() != mesh.ProtocolTCP {
		t.Error("Protocol must read kuma.io/protocol with tcp as default")
	}
	if in[0].EffectiveServicePort() != 8080 || in[1].EffectiveServicePort() != 9081 {
		t.Error("EffectiveServicePort must default to port")
	}
	if in[0].EffectiveState() != mesh.InboundReady || dp.IsBuiltinGateway() || dp.IsDelegatedGateway() {
		t.Error("defaults: Ready, not a gateway")
	}

	gw := mustDecode(t, `
type: Dataplane
mesh: default
name: gw
networking:
  address: 10.0.0.1
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
`).Spec.(*mesh.Dataplane)
	if !gw.IsBuiltinGateway() || !slices.Equal(gw.ServiceNames(), []string{"edge"}) {
		t.Errorf("builtin gateway helpers: %v", gw.ServiceNames())
	}
}

const inbound = `
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web`

func TestDataplaneInvalid(t *testing.T) {
	runInvalid(t, []invalidCase{
		{name: "no networking", field: "networking", reason: "must be defined", doc: `
type: Dataplane
mesh: default
name: dp`},
		{name: "inbound without service tag", field: `networking.inbound[0].tags["kuma.io/service"]`, reason: `mandatory tag "kuma.io/service" is missing`, doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      version: v1`},
		{name: "inbound without tags", field: `networking.inbound[0].tags["kuma.io/service"]`, reason: "missing", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080`},
		{name: "empty service tag", field: `networking.inbound[0].tags["kuma.io/service"]`, reason: "must be non-empty", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: ""`},
		{name: "bad tag value", field: `networking.inbound[0].tags["version"]`, reason: "tag value", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
      version: "v 1"`},
		{name: "unknown protocol", field: `networking.inbound[0].tags["kuma.io/protocol"]`, reason: `unknown value "udp"`, doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
      kuma.io/protocol: udp`},
		{name: "port zero", field: "networking.inbound[0].port", reason: "[1, 65535]", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 0
    tags:
      kuma.io/service: web`},
		{name: "negative port", field: "networking.inbound[0].port", reason: "non-negative integer", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: -1
    tags:
      kuma.io/service: web`},
		{name: "port as string", field: "networking.inbound[0].servicePort", reason: "integer", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    servicePort: "80"
    tags:
      kuma.io/service: web`},
		{name: "service port out of range", field: "networking.inbound[0].servicePort", reason: "[1, 65535]", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    servicePort: 65536
    tags:
      kuma.io/service: web`},
		{name: "service address not an IP", field: "networking.inbound[0].serviceAddress", reason: "IP address", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    serviceAddress: localhost
    tags:
      kuma.io/service: web`},
		{name: "service address loops to listener", field: "networking.inbound[0].serviceAddress", reason: "differ", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    serviceAddress: 10.0.0.1
    tags:
      kuma.io/service: web`},
		{name: "wildcard address", field: "networking.address", reason: "0.0.0.0", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 0.0.0.0` + inbound},
		{name: "bad address", field: "networking.address", reason: "IP address or domain name", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: "not an address"` + inbound},
		{name: "bad advertised address", field: "networking.advertisedAddress", reason: "IP address or domain name", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  advertisedAddress: 300.1.1.1` + inbound},
		{name: "unknown state", field: "networking.inbound[0].state", reason: `unknown value "Down"`, doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    state: Down
    tags:
      kuma.io/service: web`},
		{name: "bad probe interval", field: "networking.inbound[0].serviceProbe.interval", reason: "valid duration", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
    serviceProbe:
      interval: 10 s`},
		{name: "zero probe timeout", field: "networking.inbound[0].serviceProbe.timeout", reason: "positive", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
    serviceProbe:
      timeout: 0s`},
		{name: "zero probe threshold", field: "networking.inbound[0].serviceProbe.healthyThreshold", reason: "positive", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
    serviceProbe:
      healthyThreshold: 0`},
		{name: "outbound bad port", field: "networking.outbound[0].port", reason: "[1, 65535]", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 99999
    tags:
      kuma.io/service: redis`},
		{name: "outbound address not an IP", field: "networking.outbound[0].address", reason: "IP address", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 10000
    address: redis.local
    tags:
      kuma.io/service: redis`},
		{name: "outbound backendRef unknown kind", field: "networking.outbound[0].backendRef.kind", reason: "unknown value", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 10000
    backendRef:
      kind: Service
      name: redis
      port: 6379`},
		{name: "outbound backendRef and tags", field: "networking.outbound[0].backendRef", reason: "both", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 10000
    tags:
      kuma.io/service: redis
    backendRef:
      kind: MeshService
      name: redis
      port: 6379`},
		{name: "outbound backendRef without port", field: "networking.outbound[0].backendRef.port", reason: "[1, 65535]", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 10000
    backendRef:
      kind: MeshService
      name: redis`},
		{name: "gateway without service", field: `networking.gateway.tags["kuma.io/service"]`, reason: "missing", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  gateway:
    tags:
      env: prod`},
		{name: "gateway with http protocol", field: `networking.gateway.tags["kuma.io/protocol"]`, reason: "tcp", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  gateway:
    tags:
      kuma.io/service: kong
      kuma.io/protocol: http`},
		{name: "unknown gateway type", field: "networking.gateway.type", reason: `unknown value "builtin"`, doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  gateway:
    type: builtin
    tags:
      kuma.io/service: edge`},
		{name: "delegated gateway with inbound", field: "networking.inbound", reason: "delegated", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  gateway:
    tags:
      kuma.io/service: kong` + inbound},
		{name: "builtin gateway with outbound", field: "networking.outbound", reason: "builtin", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
  outbound:
  - port: 10000
    tags:
      kuma.io/service: redis`},
		{name: "redirect port out of range", field: "networking.transparentProxying.redirectPortInbound", reason: "[1, 65535]", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  transparentProxying:
    redirectPortInbound: 70000`},
		{name: "unknown ip family", field: "networking.transparentProxying.ipFamilyMode", reason: "unknown value", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  transparentProxying:
    ipFamilyMode: IPv5`},
		{name: "reachable backend without name or labels", field: "networking.transparentProxying.reachableBackends.refs[0].name", reason: "name or labels", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  transparentProxying:
    reachableBackends:
      refs:
      - kind: MeshService`},
		{name: "admin port clashes with outbound", field: "networking.admin.port", reason: "outbound", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
  outbound:
  - port: 9901
    tags:
      kuma.io/service: redis
  admin:
    port: 9901`},
		{name: "probes bad path", field: "probes.endpoints[0].path", reason: "URL path", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
probes:
  port: 9000
  endpoints:
  - inboundPort: 8080
    inboundPath: /healthz
    path: healthz`},
		{name: "metrics unknown type", field: "metrics.type", reason: "prometheus", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
metrics:
  type: statsd`},
		{name: "unknown xds variant", field: "envoy.xdsTransportProtocolVariant", reason: "unknown value", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1` + inbound + `
envoy:
  xdsTransportProtocolVariant: REST`},
		{name: "unknown field", field: "networking.inbound[0].servicePorts", reason: "unknown field", doc: `
type: Dataplane
mesh: default
name: dp
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    servicePorts: 80
    tags:
      kuma.io/service: web`},
	})
}
