package build_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

const tlsPolicies = `
type: MeshTLS
mesh: default
name: tls-params
spec:
  targetRef: {kind: Mesh}
  rules:
  - default:
      tlsVersion: {min: TLS12, max: TLS13}
      tlsCiphers: [ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384]
`

// meshWideTLS does what the control plane is to do for MeshTLS: give the
// mesh-wide inbound conf (the first inbound's from[] Mesh rule, rules[]
// merged over it) to outbound hooks as Matched.Single.
func meshWideTLS(t *testing.T, p *proxymodel.Proxy) {
	t.Helper()
	m := p.Policies["MeshTLS"]
	if m == nil || len(m.Inbounds) == 0 || m.Single != nil {
		return
	}
	in := &m.Inbounds[0]
	var confs []json.RawMessage
	if r := in.From.Compute(map[string]string{}); r != nil {
		confs = append(confs, r.Conf)
	}
	for _, e := range in.Rules {
		confs = append(confs, e.Conf)
	}
	merged, err := policy.Merge(confs...)
	if err != nil {
		t.Fatal(err)
	}
	if merged != nil {
		m.Single = &policy.Rule{Subset: policy.Subset{}, Conf: merged}
	}
}

// TLS versions and ciphers bound the inbound (DownstreamTlsContext) and,
// given the mesh-wide conf, the outbound (UpstreamTlsContext) contexts.
func TestMeshTLSGolden(t *testing.T) {
	ix := policyIndex(t, policyItems(t, tlsPolicies))
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	p.MTLS = testMTLS(t, proxymodel.MTLSStrict, p.Services)
	meshWideTLS(t, p)
	r, err := build.Sidecar(p)
	if err != nil {
		t.Fatal(err)
	}
	checkResources(t, "web-1", r)
	r.Secrets = nil
	golden(t, "policies/meshtls-web-1", dump(t, r))
}

// Without mTLS nothing changes; TLS 1.0 and 1.1 are refused.
func TestMeshTLSPlaintextAndUnsupported(t *testing.T) {
	policyGolden(t, "meshtls-plaintext", tlsPolicies, "", "web-1")
	_, err := buildPolicies(t, strings.ReplaceAll(tlsPolicies, "min: TLS12", "min: TLS10"), "web-1", proxymodel.MTLSStrict)
	if err == nil || !strings.Contains(err.Error(), "TLS10 is not supported") {
		t.Fatalf("error = %v, want TLS10 refused", err)
	}
}
