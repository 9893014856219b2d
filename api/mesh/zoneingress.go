package mesh

import "github.com/trellis-mesh/trellis/api/validate"

// ZoneIngress is the ZoneIngress resource: the proxy that receives traffic
// from other zones and forwards it to the services of its own zone.
type ZoneIngress struct {
	// Zone is the zone the ingress serves; set by the global control plane.
	Zone string `json:"zone,omitempty"`
	// Networking says where the ingress listens and how other zones reach it.
	Networking *ZoneIngressNetworking `json:"networking,omitempty"`
	// AvailableServices lists the services reachable through the ingress;
	// maintained by the control plane.
	AvailableServices []AvailableService `json:"availableServices,omitempty"`
}

// ZoneIngressNetworking is the listener of a ZoneIngress.
type ZoneIngressNetworking struct {
	// Address the listener binds.
	Address string `json:"address,omitempty"`
	// AdvertisedAddress is the IP or DNS name other zones use.
	AdvertisedAddress string `json:"advertisedAddress,omitempty"`
	// Port the listener binds.
	Port uint32 `json:"port,omitempty"`
	// AdvertisedPort is the port other zones use.
	AdvertisedPort uint32 `json:"advertisedPort,omitempty"`
	// Admin configures the proxy's admin server.
	Admin *EnvoyAdmin `json:"admin,omitempty"`
}

// AvailableService is a set of endpoints, with identical tags, that a
// ZoneIngress can forward to.
type AvailableService struct {
	Tags            map[string]string `json:"tags,omitempty"`
	Instances       *uint32           `json:"instances,omitempty"`
	Mesh            string            `json:"mesh,omitempty"`
	ExternalService *bool             `json:"externalService,omitempty"`
}

// Validate checks every field, as Kuma 2.14 does.
func (x *ZoneIngress) Validate() error {
	var errs validate.Errors
	path := validate.Root().Field("networking")
	n := x.Networking
	if n == nil {
		n = &ZoneIngressNetworking{}
	}
	validateOptionalAddress(&errs, path.Field("address"), n.Address)
	validateOptionalAddress(&errs, path.Field("advertisedAddress"), n.AdvertisedAddress)
	validate.Port(&errs, path.Field("port"), n.Port)
	if n.AdvertisedPort != 0 {
		validate.Port(&errs, path.Field("advertisedPort"), n.AdvertisedPort)
	}
	if n.AdvertisedAddress == "" && n.AdvertisedPort != 0 {
		errs.Add(path.Field("advertisedAddress"), "has to be defined with advertisedPort")
	}
	if n.AdvertisedPort == 0 && n.AdvertisedAddress != "" {
		errs.Add(path.Field("advertisedPort"), "has to be defined with advertisedAddress")
	}
	if n.Admin != nil {
		validateAdminPort(&errs, path.Field("admin").Field("port"), n.Admin.Port, n.Port)
	}
	for i, s := range x.AvailableServices {
		p := validate.Root().Field("availableServices").Index(i)
		validateTags(&errs, p.Field("tags"), s.Tags, tagRules{requireService: true})
		if s.Mesh != "" {
			if reason := validate.Name(s.Mesh); reason != "" {
				errs.Add(p.Field("mesh"), reason)
			}
		}
	}
	return errs.Err()
}

// validateAdminPort checks a zone proxy's admin port, which must not be
// the port of its listener.
func validateAdminPort(errs *validate.Errors, path validate.Path, admin, listener uint32) {
	validate.Port(errs, path, admin)
	if admin != 0 && admin == listener {
		errs.Add(path, "must differ from port")
	}
}
