package mesh_test

import "testing"

func TestZoneProxyTestdata(t *testing.T) { checkTestdata(t, "zoneingress", "zoneegress") }

func TestZoneIngressInvalid(t *testing.T) {
	runInvalid(t, []invalidCase{
		{name: "no networking", field: "networking.port", reason: "[1, 65535]", doc: `
type: ZoneIngress
name: zi`},
		{name: "advertised port without address", field: "networking.advertisedAddress", reason: "advertisedPort", doc: `
type: ZoneIngress
name: zi
networking:
  port: 10001
  advertisedPort: 10000`},
		{name: "advertised port out of range", field: "networking.advertisedPort", reason: "[1, 65535]", doc: `
type: ZoneIngress
name: zi
networking:
  port: 10001
  advertisedAddress: ingress.example.com
  advertisedPort: 70000`},
		{name: "wildcard address", field: "networking.address", reason: "must not be", doc: `
type: ZoneIngress
name: zi
networking:
  address: "::"
  port: 10001`},
		{name: "admin port equals port", field: "networking.admin.port", reason: "differ", doc: `
type: ZoneIngress
name: zi
networking:
  port: 10001
  admin:
    port: 10001`},
		{name: "available service with empty tag value", field: `availableServices[0].tags["version"]`, reason: "non-empty", doc: `
type: ZoneIngress
name: zi
networking:
  port: 10001
availableServices:
- tags:
    kuma.io/service: web
    version: ""`},
		{name: "instances negative", field: "availableServices[0].instances", reason: "non-negative", doc: `
type: ZoneIngress
name: zi
networking:
  port: 10001
availableServices:
- instances: -1
  tags:
    kuma.io/service: web`},
		{name: "mesh-scoped field set", field: "mesh", reason: "not mesh-scoped", doc: `
type: ZoneIngress
name: zi
mesh: default
networking:
  port: 10001`},
	})
}

func TestZoneEgressInvalid(t *testing.T) {
	runInvalid(t, []invalidCase{
		{name: "no networking", field: "networking.port", reason: "[1, 65535]", doc: `
type: ZoneEgress
name: ze`},
		{name: "bad address", field: "networking.address", reason: "IP address or domain name", doc: `
type: ZoneEgress
name: ze
networking:
  address: "egress host"
  port: 10002`},
		{name: "bad admin port", field: "networking.admin.port", reason: "[1, 65535]", doc: `
type: ZoneEgress
name: ze
networking:
  port: 10002
  admin:
    port: 0`},
		{name: "unknown field", field: "networking.advertisedAddress", reason: "unknown field", doc: `
type: ZoneEgress
name: ze
networking:
  port: 10002
  advertisedAddress: 1.2.3.4`},
	})
}
