// Package transparentproxy captures an application's traffic for its
// sidecar with iptables nat rules: inbound TCP is redirected to the
// sidecar's inbound port, outbound TCP to its outbound port and, optionally,
// DNS (UDP and TCP port 53) to its DNS server, while the sidecar's own
// traffic (matched by its uid) is left alone. Rules are generated as
// iptables-restore input (IPv4 and IPv6), applied atomically with
// `iptables-restore --noflush`, and removed without a trace.
//
// It is the library behind `trellisctl install/uninstall transparent-proxy`
// and is meant to be called by the Kubernetes init container too.
package transparentproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// Defaults, as in Kuma.
const (
	DefaultRedirectPortInbound  = 15006
	DefaultRedirectPortOutbound = 15001
	DefaultRedirectPortDNS      = 15053
	// DefaultDPUser is the user the sidecar runs as when neither a user nor
	// a uid is given.
	DefaultDPUser = "trellis-dp"
)

// IP family modes (Kuma's --ip-family-mode values).
const (
	// IPFamilyDualStack installs IPv4 and IPv6 rules (IPv6 only where the
	// kernel and ip6tables support it).
	IPFamilyDualStack = "dualstack"
	// IPFamilyIPv4 installs IPv4 rules only.
	IPFamilyIPv4 = "ipv4"
)

// ErrInvalidConfig is wrapped by every validation error of a Config.
var ErrInvalidConfig = errors.New("invalid transparent-proxy configuration")

// FieldError is a validation error of one Config field; it wraps
// ErrInvalidConfig (and the cause, if any).
type FieldError struct {
	// Field is the Config field in lowerCamelCase, with an index for list
	// elements: "redirectPortDNS", "excludeInboundPorts[1]", "dpUser".
	Field string
	// Reason says what is wrong.
	Reason string
	cause  error
}

func (e *FieldError) Error() string {
	return ErrInvalidConfig.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidConfig and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalidConfig, e.cause} }

// invalid returns a *FieldError.
func invalid(cause error, field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), cause: cause}
}

// Config says what to capture and where to send it. The zero value plus a
// DPUser is a valid configuration: every zero field gets its default.
type Config struct {
	// RedirectPortInbound is the sidecar's inbound listener (default 15006).
	RedirectPortInbound uint16
	// RedirectPortOutbound is the sidecar's outbound listener (default 15001).
	RedirectPortOutbound uint16
	// RedirectDNS sends the application's DNS queries (UDP and TCP port 53)
	// to RedirectPortDNS on 127.0.0.1 / ::1.
	RedirectDNS bool
	// RedirectPortDNS is the sidecar's DNS server port (default 15053).
	RedirectPortDNS uint16
	// DPUser is the user the sidecar runs as: a name (looked up in the
	// user database) or a numeric uid (default "trellis-dp"). Its traffic
	// is never redirected, so the sidecar can reach the real destinations.
	DPUser string
	// ExcludeInboundPorts are destination ports of inbound TCP that reach
	// the host directly (e.g. 22 for SSH).
	ExcludeInboundPorts []uint16
	// ExcludeOutboundPorts are destination ports of outbound TCP that leave
	// directly.
	ExcludeOutboundPorts []uint16
	// ExcludeOutboundUIDs are uids (besides the sidecar's) whose traffic is
	// never redirected, DNS included.
	ExcludeOutboundUIDs []uint32
	// ExcludeInboundIPs are source addresses or CIDRs whose inbound TCP is
	// not redirected; ExcludeOutboundIPs are destinations outbound TCP
	// reaches directly. Each goes to the rules of its family.
	ExcludeInboundIPs, ExcludeOutboundIPs []netip.Prefix
	// IPFamilyMode is IPFamilyDualStack (default) or IPFamilyIPv4.
	IPFamilyMode string
	// DryRun makes Install and Uninstall report what they would apply and
	// change nothing.
	DryRun bool
}

// Resolved is a validated Config with its defaults filled in and the
// sidecar's user resolved to a uid.
type Resolved struct {
	Config
	// DPUID is the sidecar's uid.
	DPUID uint32
}

// lookupUser is user.Lookup, replaceable in tests.
var lookupUser = user.Lookup

// Resolve validates c, fills in defaults and resolves DPUser to a uid.
// Errors wrap ErrInvalidConfig and name the offending field.
func (c Config) Resolve() (Resolved, error) {
	if c.RedirectPortInbound == 0 {
		c.RedirectPortInbound = DefaultRedirectPortInbound
	}
	if c.RedirectPortOutbound == 0 {
		c.RedirectPortOutbound = DefaultRedirectPortOutbound
	}
	if c.RedirectPortDNS == 0 {
		c.RedirectPortDNS = DefaultRedirectPortDNS
	}
	if c.DPUser == "" {
		c.DPUser = DefaultDPUser
	}
	switch strings.ToLower(c.IPFamilyMode) {
	case "", IPFamilyDualStack:
		c.IPFamilyMode = IPFamilyDualStack
	case IPFamilyIPv4:
		c.IPFamilyMode = IPFamilyIPv4
	default:
		return Resolved{}, invalid(nil, "ipFamilyMode", "%q is not one of %s, %s", c.IPFamilyMode,
			IPFamilyDualStack, IPFamilyIPv4)
	}
	ports := map[string]uint16{"redirectPortInbound": c.RedirectPortInbound, "redirectPortOutbound": c.RedirectPortOutbound}
	if c.RedirectDNS {
		ports["redirectPortDNS"] = c.RedirectPortDNS
	}
	if err := distinctPorts(ports); err != nil {
		return Resolved{}, err
	}
	if err := checkPorts("excludeInboundPorts", c.ExcludeInboundPorts); err != nil {
		return Resolved{}, err
	}
	if err := checkPorts("excludeOutboundPorts", c.ExcludeOutboundPorts); err != nil {
		return Resolved{}, err
	}
	for i, p := range append(slices.Clone(c.ExcludeInboundIPs), c.ExcludeOutboundIPs...) {
		if !p.IsValid() {
			field := "excludeInboundIPs"
			if i >= len(c.ExcludeInboundIPs) {
				field, i = "excludeOutboundIPs", i-len(c.ExcludeInboundIPs)
			}
			return Resolved{}, invalid(nil, fmt.Sprintf("%s[%d]", field, i), "not a valid address or CIDR")
		}
	}
	uid, err := resolveUID(c.DPUser)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Config: c, DPUID: uid}, nil
}

// distinctPorts rejects two redirect ports that are equal.
func distinctPorts(ports map[string]uint16) error {
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, a := range names {
		for _, b := range names[i+1:] {
			if ports[a] == ports[b] {
				return invalid(nil, b, "port %d is also %s", ports[b], a)
			}
		}
	}
	return nil
}

// checkPorts rejects port 0 in an exclusion list.
func checkPorts(field string, ports []uint16) error {
	for i, p := range ports {
		if p == 0 {
			return invalid(nil, fmt.Sprintf("%s[%d]", field, i), "port 0 is not a valid port")
		}
	}
	return nil
}

// resolveUID turns a user name or numeric uid into a uid, refusing root:
// the sidecar's traffic is exempt from redirection, so running it as root
// would exempt every root process too.
func resolveUID(name string) (uint32, error) {
	uid, err := strconv.ParseUint(name, 10, 32)
	if err != nil {
		u, lerr := lookupUser(name)
		if lerr != nil {
			return 0, invalid(lerr, "dpUser", "user %q not found (create it, or give a numeric uid): %v", name, lerr)
		}
		uid, err = strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return 0, invalid(nil, "dpUser", "user %q has a non-numeric uid %q", name, u.Uid)
		}
	}
	if uid == 0 {
		return 0, invalid(nil, "dpUser", "the sidecar must not run as root (uid 0): traffic of its uid is never redirected")
	}
	return uint32(uid), nil
}

// uniqueSorted returns the sorted distinct values of s.
func uniqueSorted[T uint16 | uint32](s []T) []T {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
