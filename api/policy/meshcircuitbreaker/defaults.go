package meshcircuitbreaker

import "github.com/trellis-mesh/trellis/api/common"

// DefaultNamePrefix is the name prefix of the MeshCircuitBreaker a new mesh
// gets; the full name is "mesh-circuit-breaker-all-<mesh>".
const DefaultNamePrefix = "mesh-circuit-breaker-all"

func u32(v uint32) *uint32 { return &v }

// DefaultSpec returns the MeshCircuitBreaker Kuma 2.14 creates in every new
// mesh: Envoy's usual connection limits (1024 connections, pending and
// parallel requests, 3 parallel retries) to every destination.
func DefaultSpec() *Spec {
	return &Spec{
		TargetRef: &common.TargetRef{Kind: common.Mesh},
		To: []To{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{ConnectionLimits: &ConnectionLimits{
				MaxConnections:     u32(1024),
				MaxPendingRequests: u32(1024),
				MaxRequests:        u32(1024),
				MaxRetries:         u32(3),
			}},
		}},
	}
}

// DefaultName is the name of the default MeshCircuitBreaker of mesh.
func DefaultName(mesh string) string { return DefaultNamePrefix + "-" + mesh }

// Defaults returns the MeshCircuitBreaker policies a new mesh gets, by name.
func Defaults(mesh string) map[string]*Spec {
	return map[string]*Spec{DefaultName(mesh): DefaultSpec()}
}
