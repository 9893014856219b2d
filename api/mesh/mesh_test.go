package mesh_test

import (
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
)

func TestMeshTestdata(t *testing.T) { checkTestdata(t, "mesh") }

func TestMeshValid(t *testing.T) {
	for name, doc := range map[string]string{
		"provided CA from secrets": `
type: Mesh
name: mesh-provided
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: provided
    dpCert:
      rotation:
        expiration: 24h
      requestTimeout: 5s
    rootChain:
      requestTimeout: 10s
    conf:
      cert:
        secret: ca-cert
      key:
        secret: ca-key
`,
		"provided CA inline and file": `
type: Mesh
name: mesh-provided-inline
mtls:
  enabledBackend: ca-1
  skipValidation: true
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        inline: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
      key:
        file: /etc/kuma/ca.key
`,
		"inlineString datasource": `
type: Mesh
name: mesh-provided-string
mtls:
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        inlineString: "-----BEGIN CERTIFICATE-----"
      key:
        inlineString: "-----BEGIN RSA PRIVATE KEY-----"
`,
		"explicit zero values": `
type: Mesh
name: mesh-zeros
mtls: {}
routing:
  zoneEgress: false
  localityAwareLoadBalancing: false
networking:
  outbound:
    passthrough: true
`,
	} {
		t.Run(name, func(t *testing.T) { mustDecode(t, doc) })
	}
}

func TestMeshHelpers(t *testing.T) {
	res := mustDecode(t, `
type: Mesh
name: m
skipCreatingInitialPolicies: [MeshTimeout]
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
`)
	m := res.Spec.(*mesh.Mesh)
	if !m.MTLSEnabled() || m.MTLSMode() != mesh.ModeStrict || m.EnabledMTLSBackend().Name != "ca-1" {
		t.Errorf("mtls helpers: enabled=%v mode=%q", m.MTLSEnabled(), m.MTLSMode())
	}
	if !m.SkipsInitialPolicy("MeshTimeout") || m.SkipsInitialPolicy("MeshRetry") {
		t.Error("SkipsInitialPolicy must match listed kinds only")
	}
	if !m.PassthroughEnabled() || m.ZoneEgressEnabled() || m.MeshServicesMode() != mesh.MeshServicesDisabled {
		t.Error("defaults: passthrough on, zone egress off, mesh services disabled")
	}

	all := &mesh.Mesh{SkipCreatingInitialPolicies: []string{"*"}}
	if !all.SkipsInitialPolicy("MeshCircuitBreaker") || all.MTLSEnabled() || all.MTLSMode() != "" {
		t.Error(`"*" skips every kind; no mtls section means mTLS off`)
	}
	var none *mesh.Mesh
	if none.SkipsInitialPolicy("MeshRetry") || none.MTLSEnabled() {
		t.Error("nil mesh skips nothing and has no mTLS")
	}
}

func TestParseCertDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "10y": 3650 * 24 * time.Hour, "90m": 90 * time.Minute, "2h30m": 150 * time.Minute,
	} {
		got, err := mesh.ParseCertDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseCertDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"2e", "d", "1.5d", "-1y", ""} {
		if _, err := mesh.ParseCertDuration(in); err == nil {
			t.Errorf("ParseCertDuration(%q) must fail", in)
		}
	}
}

func TestMeshInvalid(t *testing.T) {
	runInvalid(t, []invalidCase{
		{name: "enabledBackend names a missing backend", field: "mtls.enabledBackend", reason: "has to be set to one of the backends", doc: `
type: Mesh
name: m
mtls:
  enabledBackend: ca-2
  backends:
  - name: ca-1
    type: builtin`},
		{name: "backend without name", field: "mtls.backends[0].name", reason: "must be defined", doc: `
type: Mesh
name: m
mtls:
  backends:
  - type: builtin`},
		{name: "unknown mode", field: "mtls.backends[0].mode", reason: `unknown value "strict"`, doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    mode: strict`},
		{name: "bad rotation", field: "mtls.backends[0].dpCert.rotation.expiration", reason: "valid duration", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    dpCert:
      rotation:
        expiration: 2e`},
		{name: "bad ca expiration", field: "mtls.backends[0].conf.caCert.expiration", reason: "valid duration", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    conf:
      caCert:
        expiration: forever`},
		{name: "bad request timeout", field: "mtls.backends[0].dpCert.requestTimeout", reason: "valid duration", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    dpCert:
      requestTimeout: 5 seconds`},
		{name: "provided without key", field: "mtls.backends[0].conf.key", reason: "must be defined", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        secret: ca-cert`},
		{name: "provided without conf", field: "mtls.backends[0].conf", reason: "must be defined", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: provided`},
		{name: "datasource with two sources", field: "mtls.backends[0].conf.cert", reason: "only one of", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        secret: ca-cert
        file: /ca.pem
      key:
        secret: ca-key`},
		{name: "datasource empty secret", field: "mtls.backends[0].conf.key.secret", reason: "cannot be empty", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        secret: ca-cert
      key:
        secret: ""`},
		{name: "datasource bad base64", field: "mtls.backends[0].conf.cert.inline", reason: "base64", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        inline: "not base64!"
      key:
        secret: ca-key`},
		{name: "builtin with provided fields", field: "mtls.backends[0].conf.cert", reason: `backend type "builtin"`, doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    conf:
      cert:
        secret: ca-cert`},
		{name: "unknown conf field", field: "mtls.backends[0].conf.rsaBits", reason: "unknown field", doc: `
type: Mesh
name: m
mtls:
  backends:
  - name: ca-1
    type: builtin
    conf:
      rsaBits: 2048`},
		{name: "unknown enum of mesh services", field: "meshServices.mode", reason: `unknown value "On"`, doc: `
type: Mesh
name: m
meshServices:
  mode: "On"`},
		{name: "zone egress without mtls", field: "mtls", reason: "zoneEgress", doc: `
type: Mesh
name: m
routing:
  zoneEgress: true`},
		{name: "empty skip entry", field: "skipCreatingInitialPolicies[1]", reason: "must not be empty", doc: `
type: Mesh
name: m
skipCreatingInitialPolicies: [MeshRetry, ""]`},
		{name: "skip list not a list", field: "skipCreatingInitialPolicies", reason: "must be a list", doc: `
type: Mesh
name: m
skipCreatingInitialPolicies: "*"`},
		{name: "constraint without tags", field: "constraints.dataplaneProxy.requirements[0].tags", reason: "at least one tag", doc: `
type: Mesh
name: m
constraints:
  dataplaneProxy:
    requirements:
    - {}`},
		{name: "constraint with bad tag", field: `constraints.dataplaneProxy.restrictions[0].tags["!@#"]`, reason: "tag name", doc: `
type: Mesh
name: m
constraints:
  dataplaneProxy:
    restrictions:
    - tags:
        "!@#": x`},
		{name: "logging duplicate names", field: "logging.backends[1].name", reason: "already used", doc: `
type: Mesh
name: m
logging:
  backends:
  - name: b
    type: file
    conf:
      path: /tmp/a
  - name: b
    type: file
    conf:
      path: /tmp/b`},
		{name: "logging unknown type", field: "logging.backends[0].type", reason: "unknown value", doc: `
type: Mesh
name: m
logging:
  backends:
  - name: b
    type: syslog`},
		{name: "logging tcp bad address", field: "logging.backends[0].conf.address", reason: "HOST:PORT", doc: `
type: Mesh
name: m
logging:
  backends:
  - name: b
    type: tcp
    conf:
      address: wrong-format:234:234`},
		{name: "logging default unknown", field: "logging.defaultBackend", reason: "has to be set", doc: `
type: Mesh
name: m
logging:
  defaultBackend: nope
  backends:
  - name: b
    type: file
    conf:
      path: /tmp/a`},
		{name: "tracing sampling out of range", field: "tracing.backends[0].sampling", reason: "range", doc: `
type: Mesh
name: m
tracing:
  backends:
  - name: z
    type: zipkin
    sampling: 100.1
    conf:
      url: http://zipkin:9411/api/v2/spans`},
		{name: "zipkin url without port", field: "tracing.backends[0].conf.url", reason: "port", doc: `
type: Mesh
name: m
tracing:
  backends:
  - name: z
    type: zipkin
    conf:
      url: http://zipkin/api/v2/spans`},
		{name: "zipkin bad apiVersion", field: "tracing.backends[0].conf.apiVersion", reason: "unknown value", doc: `
type: Mesh
name: m
tracing:
  backends:
  - name: z
    type: zipkin
    conf:
      url: http://zipkin:9411/api/v2/spans
      apiVersion: grpc`},
		{name: "datadog without port", field: "tracing.backends[0].conf.port", reason: "must be defined", doc: `
type: Mesh
name: m
tracing:
  backends:
  - name: d
    type: datadog
    conf:
      address: 127.0.0.1`},
		{name: "metrics unknown type", field: "metrics.backends[0].type", reason: "prometheus", doc: `
type: Mesh
name: m
metrics:
  backends:
  - name: p
    type: statsd`},
		{name: "metrics skipMTLS conflicts with tls", field: "metrics.backends[0].conf", reason: "cannot be defined together", doc: `
type: Mesh
name: m
metrics:
  backends:
  - name: p
    type: prometheus
    conf:
      skipMTLS: true
      tls:
        mode: delegated`},
		{name: "metrics bad port", field: "metrics.backends[0].conf.port", reason: "range", doc: `
type: Mesh
name: m
metrics:
  backends:
  - name: p
    type: prometheus
    conf:
      port: 0`},
		{name: "metrics enabledBackend unknown", field: "metrics.enabledBackend", reason: "has to be set", doc: `
type: Mesh
name: m
metrics:
  enabledBackend: q
  backends:
  - name: p
    type: prometheus`},
	})
}

func TestMeshTwoBackendsForRotation(t *testing.T) {
	if _, err := decode(t, `
type: Mesh
name: m
mtls:
  enabledBackend: ca-2
  backends:
  - name: ca-1
    type: builtin
  - name: ca-2
    type: builtin`); err != nil {
		t.Fatalf("two builtin backends (CA rotation) refused: %v", err)
	}
}

func TestMeshTwoBackends(t *testing.T) {
	_, err := decode(t, `
type: Mesh
name: m
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
  - name: ca-1
    type: builtin`)
	vs := violationsOf(t, err)
	// Two backends are allowed (CA rotation); two with one name are not.
	want := []string{"mtls.backends[1].name"}
	if len(vs) != len(want) {
		t.Fatalf("got %+v, want fields %v", vs, want)
	}
	for i, f := range want {
		if vs[i].Field != f {
			t.Errorf("violation %d at %s, want %s", i, vs[i].Field, f)
		}
	}
}
