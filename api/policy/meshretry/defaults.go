package meshretry

import "github.com/trellis-mesh/trellis/api/common"

// DefaultNamePrefix is the name prefix of the MeshRetry a new mesh gets; the
// full name is "mesh-retry-all-<mesh>".
const DefaultNamePrefix = "mesh-retry-all"

func u32(v uint32) *uint32 { return &v }

func dur(s string) *common.Duration {
	d := common.Duration(s)
	return &d
}

// DefaultSpec returns the MeshRetry Kuma 2.14 creates in every new mesh:
// 5 connect attempts for TCP, 5 retries with a 16s per-try timeout and a
// 25ms-250ms back-off for HTTP and gRPC, to every destination.
func DefaultSpec() *Spec {
	backOff := func() *BackOff { return &BackOff{BaseInterval: dur("25ms"), MaxInterval: dur("250ms")} }
	return &Spec{
		TargetRef: &common.TargetRef{Kind: common.Mesh},
		To: []To{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{
				TCP:  &TCP{MaxConnectAttempt: u32(5)},
				HTTP: &HTTP{NumRetries: u32(5), PerTryTimeout: dur("16s"), BackOff: backOff()},
				GRPC: &GRPC{NumRetries: u32(5), PerTryTimeout: dur("16s"), BackOff: backOff()},
			},
		}},
	}
}

// DefaultName is the name of the default MeshRetry of mesh.
func DefaultName(mesh string) string { return DefaultNamePrefix + "-" + mesh }

// Defaults returns the MeshRetry policies a new mesh gets, by name.
func Defaults(mesh string) map[string]*Spec {
	return map[string]*Spec{DefaultName(mesh): DefaultSpec()}
}
