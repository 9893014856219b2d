package mesh

import "github.com/trellis-mesh/trellis/api/validate"

// ZoneEgress is the ZoneEgress resource: the proxy through which traffic
// leaves the zone, to other zones or to external services, when the mesh
// enables routing.zoneEgress.
type ZoneEgress struct {
	// Zone is the zone the egress serves; set by the control plane.
	Zone string `json:"zone,omitempty"`
	// Networking says where the egress listens.
	Networking *ZoneEgressNetworking `json:"networking,omitempty"`
}

// ZoneEgressNetworking is the listener of a ZoneEgress.
type ZoneEgressNetworking struct {
	// Address the listener binds.
	Address string `json:"address,omitempty"`
	// Port the listener binds.
	Port uint32 `json:"port,omitempty"`
	// Admin configures the proxy's admin server.
	Admin *EnvoyAdmin `json:"admin,omitempty"`
}

// Validate checks every field, as Kuma 2.14 does.
func (x *ZoneEgress) Validate() error {
	var errs validate.Errors
	path := validate.Root().Field("networking")
	n := x.Networking
	if n == nil {
		n = &ZoneEgressNetworking{}
	}
	validateOptionalAddress(&errs, path.Field("address"), n.Address)
	validate.Port(&errs, path.Field("port"), n.Port)
	if n.Admin != nil {
		validateAdminPort(&errs, path.Field("admin").Field("port"), n.Admin.Port, n.Port)
	}
	return errs.Err()
}
