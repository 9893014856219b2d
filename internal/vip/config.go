// Package vip allocates the virtual IPs of a mesh's services and keeps
// them in the store, so a service keeps its address across control-plane
// restarts and every trellis-cp instance sharing one store hands out the
// same one.
//
// Each service (kuma.io/service value) of a mesh gets an IPv4 address from
// a CIDR (Kuma's default: 240.0.0.0/4, dnsServer.CIDR) and the DNS name
// "<service>.<domain>" (domain "mesh" by default, dnsServer.domain). Its
// IPv6 address is derived, not allocated: the IPv4 address in the low 32
// bits of an IPv6 /96 prefix (fd00:fd00::/96 by default, a unique local
// range; dnsServer.CIDRv6), so 240.0.0.1 pairs with fd00:fd00::f000:1.
//
// One store record per mesh (kind MeshVIPs, name "dns-vips", deleted with
// the mesh) holds the allocations. The reconciler calls Sync once per mesh
// recompute with the services the mesh has; Sync adds addresses for new
// services and writes them with the store's optimistic concurrency (a
// conflicting write by another instance is re-read and retried, so the
// first writer wins and the others adopt its addresses). A service that
// disappears keeps its address for ReleaseAfter, so a service whose only
// instance restarts comes back at the same address; after that its address
// is released and may be given to another service.
package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Defaults (Kuma's dnsServer defaults, and the IPv6 range of Kuma's DNS
// documentation).
const (
	DefaultDomain = "mesh"
	DefaultCIDR   = "240.0.0.0/4"
	DefaultCIDRv6 = "fd00:fd00::/96"
	// DefaultReleaseAfter is how long a vanished service keeps its address:
	// the DNS answers' TTL (30 s, as Kuma's) and some margin.
	DefaultReleaseAfter = time.Minute
)

// Config says where addresses come from and how names are formed.
type Config struct {
	// Domain is the DNS suffix of the names ("mesh").
	Domain string
	// CIDR is the IPv4 range addresses are allocated from.
	CIDR netip.Prefix
	// CIDRv6 is the IPv6 prefix (at most /96) the IPv6 addresses are
	// derived in; invalid (the zero value) means no IPv6 addresses.
	CIDRv6 netip.Prefix
	// ReleaseAfter is how long a service that is gone keeps its address.
	ReleaseAfter time.Duration
}

// DefaultConfig is the configuration of Kuma's defaults.
func DefaultConfig() Config {
	c, _ := ParseConfig(DefaultDomain, DefaultCIDR, DefaultCIDRv6)
	return c
}

// ParseConfig checks and parses the dnsServer settings: the domain, the
// IPv4 CIDR and the IPv6 prefix (empty for none). Errors name the setting.
func ParseConfig(domain, cidr, cidrV6 string) (Config, error) {
	c := Config{Domain: strings.TrimSuffix(strings.ToLower(domain), "."), ReleaseAfter: DefaultReleaseAfter}
	var errs []error
	if err := checkDomain(c.Domain); err != nil {
		errs = append(errs, fmt.Errorf("domain %q: %w", domain, err))
	}
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("CIDR %q: %w", cidr, err))
	case !p.Addr().Is4():
		errs = append(errs, fmt.Errorf("CIDR %q: must be an IPv4 range", cidr))
	case p.Bits() > 30:
		errs = append(errs, fmt.Errorf("CIDR %q: must hold at least 4 addresses (/30 or larger)", cidr))
	default:
		c.CIDR = p.Masked()
	}
	if cidrV6 != "" {
		p, err := netip.ParsePrefix(cidrV6)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("CIDRv6 %q: %w", cidrV6, err))
		case !p.Addr().Is6() || p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("CIDRv6 %q: must be an IPv6 prefix", cidrV6))
		case p.Bits() > 96:
			errs = append(errs, fmt.Errorf("CIDRv6 %q: must be /96 or larger (it holds the IPv4 address in its low 32 bits)", cidrV6))
		default:
			c.CIDRv6 = p.Masked()
		}
	}
	return c, errors.Join(errs...)
}

// checkDomain accepts a DNS name of letters, digits and hyphens.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("must not be empty")
	}
	if len(d) > 200 {
		return errors.New("must be at most 200 characters")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q is not a DNS label", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("label %q has a character other than a letter, digit or hyphen", label)
			}
		}
	}
	return nil
}

// Name is the DNS name of a service: "<service>.<domain>". Like Kuma, the
// proxies also answer for the name with "." for every "_" of the service
// (Kubernetes services are "name_namespace_svc_port"; the xDS builder adds
// that name).
func (c Config) Name(service string) string { return service + "." + c.Domain }

// v6 derives the IPv6 address paired with an IPv4 VIP; invalid without
// CIDRv6.
func (c Config) v6(v4 netip.Addr) netip.Addr {
	if !c.CIDRv6.IsValid() || !v4.Is4() {
		return netip.Addr{}
	}
	b := c.CIDRv6.Addr().As16()
	a4 := v4.As4()
	copy(b[12:], a4[:])
	return netip.AddrFrom16(b)
}
