// Package kinds is the one table of every resource kind Trellis serves: the
// API server, the CLI and the stores iterate over it instead of holding code
// per kind.
package kinds

import (
	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/policy/meshaccesslog"
	"github.com/trellis-mesh/trellis/api/policy/meshcircuitbreaker"
	"github.com/trellis-mesh/trellis/api/policy/meshfaultinjection"
	"github.com/trellis-mesh/trellis/api/policy/meshhealthcheck"
	"github.com/trellis-mesh/trellis/api/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/api/policy/meshloadbalancingstrategy"
	"github.com/trellis-mesh/trellis/api/policy/meshmetric"
	"github.com/trellis-mesh/trellis/api/policy/meshpassthrough"
	"github.com/trellis-mesh/trellis/api/policy/meshproxypatch"
	"github.com/trellis-mesh/trellis/api/policy/meshratelimit"
	"github.com/trellis-mesh/trellis/api/policy/meshretry"
	"github.com/trellis-mesh/trellis/api/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
	"github.com/trellis-mesh/trellis/api/policy/meshtls"
	"github.com/trellis-mesh/trellis/api/policy/meshtrace"
	"github.com/trellis-mesh/trellis/api/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Kind names used by code that handles one kind specially.
const (
	Mesh         = "Mesh"
	Dataplane    = "Dataplane"
	Secret       = "Secret"
	GlobalSecret = "GlobalSecret"
	Zone         = "Zone"
	MeshTimeout  = "MeshTimeout"
	MeshRetry    = "MeshRetry"
	// MeshCircuitBreaker is created by default in every new mesh.
	MeshCircuitBreaker = "MeshCircuitBreaker"
)

func flat(kind, path string, scope resource.Scope, newSpec func() resource.Spec) *resource.Descriptor {
	return &resource.Descriptor{Kind: kind, Path: path, Singular: lower(kind), Scope: scope, Shape: resource.ShapeFlat, NewSpec: newSpec}
}

func policy(kind, path string, info resource.PolicyInfo, newSpec func() resource.Spec) *resource.Descriptor {
	return &resource.Descriptor{Kind: kind, Path: path, Singular: lower(kind), Scope: resource.ScopeMesh, Shape: resource.ShapePolicy, Policy: &info, NewSpec: newSpec}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var (
	to        = resource.PolicyInfo{HasTo: true}
	toFrom    = resource.PolicyInfo{HasTo: true, HasFrom: true}
	fromOnly  = resource.PolicyInfo{HasFrom: true}
	fromRules = resource.PolicyInfo{HasFrom: true, HasRules: true}
	toRules   = resource.PolicyInfo{HasTo: true, HasFrom: true, HasRules: true}
	topOnly   = resource.PolicyInfo{}
)

// Descriptors returns a fresh list of every served kind.
func Descriptors() []*resource.Descriptor {
	return []*resource.Descriptor{
		flat(Mesh, "meshes", resource.ScopeGlobal, func() resource.Spec { return &mesh.Mesh{} }),
		flat(Dataplane, "dataplanes", resource.ScopeMesh, func() resource.Spec { return &mesh.Dataplane{} }),
		flat("ZoneIngress", "zoneingresses", resource.ScopeGlobal, func() resource.Spec { return &mesh.ZoneIngress{} }),
		flat("ZoneEgress", "zoneegresses", resource.ScopeGlobal, func() resource.Spec { return &mesh.ZoneEgress{} }),
		flat("MeshGateway", "meshgateways", resource.ScopeMesh, func() resource.Spec { return &mesh.MeshGateway{} }),
		flat(Secret, "secrets", resource.ScopeMesh, func() resource.Spec { return &system.Secret{} }),
		flat(GlobalSecret, "global-secrets", resource.ScopeGlobal, func() resource.Spec { return &system.GlobalSecret{} }),
		flat(Zone, "zones", resource.ScopeGlobal, func() resource.Spec { return &system.Zone{} }),

		policy("MeshTrafficPermission", "meshtrafficpermissions", fromRules, func() resource.Spec { return &meshtrafficpermission.Spec{} }),
		policy(MeshTimeout, "meshtimeouts", toRules, func() resource.Spec { return &meshtimeout.Spec{} }),
		policy(MeshRetry, "meshretries", to, func() resource.Spec { return &meshretry.Spec{} }),
		policy(MeshCircuitBreaker, "meshcircuitbreakers", toRules, func() resource.Spec { return &meshcircuitbreaker.Spec{} }),
		policy("MeshHealthCheck", "meshhealthchecks", to, func() resource.Spec { return &meshhealthcheck.Spec{} }),
		policy("MeshRateLimit", "meshratelimits", toRules, func() resource.Spec { return &meshratelimit.Spec{} }),
		policy("MeshFaultInjection", "meshfaultinjections", toRules, func() resource.Spec { return &meshfaultinjection.Spec{} }),
		policy("MeshHTTPRoute", "meshhttproutes", to, func() resource.Spec { return &meshhttproute.Spec{} }),
		policy("MeshTCPRoute", "meshtcproutes", to, func() resource.Spec { return &meshtcproute.Spec{} }),
		policy("MeshLoadBalancingStrategy", "meshloadbalancingstrategies", to, func() resource.Spec { return &meshloadbalancingstrategy.Spec{} }),
		policy("MeshAccessLog", "meshaccesslogs", toRules, func() resource.Spec { return &meshaccesslog.Spec{} }),
		policy("MeshTrace", "meshtraces", topOnly, func() resource.Spec { return &meshtrace.Spec{} }),
		policy("MeshMetric", "meshmetrics", topOnly, func() resource.Spec { return &meshmetric.Spec{} }),
		policy("MeshProxyPatch", "meshproxypatches", topOnly, func() resource.Spec { return &meshproxypatch.Spec{} }),
		policy("MeshTLS", "meshtlses", fromRules, func() resource.Spec { return &meshtls.Spec{} }),
		policy("MeshPassthrough", "meshpassthroughs", topOnly, func() resource.Spec { return &meshpassthrough.Spec{} }),
	}
}

// Unsupported maps Kuma kinds (and their REST paths) that Trellis does not
// serve yet to their kind names; the API answers 400 "not supported yet".
func Unsupported() map[string]string {
	out := map[string]string{}
	for kind, path := range map[string]string{
		"MeshService":          "meshservices",
		"MeshExternalService":  "meshexternalservices",
		"MeshMultiZoneService": "meshmultizoneservices",
		"HostnameGenerator":    "hostnamegenerators",
		"MeshIdentity":         "meshidentities",
		"MeshTrust":            "meshtrusts",
	} {
		out[kind] = kind
		out[path] = kind
	}
	return out
}

// Registry returns the registry of every served kind.
func Registry() *resource.Registry {
	r, err := resource.NewRegistry(Descriptors(), Unsupported())
	if err != nil {
		panic(err) // the table above is static; a duplicate is a programming error caught by tests
	}
	return r
}
