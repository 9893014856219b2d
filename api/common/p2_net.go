package common

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// dnsLabelRE is one label of a DNS name: letters, digits and inner dashes.
var dnsLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)

// subdomainRE is an RFC 1123 subdomain in lower case, as Kubernetes and Kuma
// define it for hostnames.
var subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// IsDNSName reports whether s is a DNS name: dot-separated labels of
// letters, digits and inner dashes, at most 63 characters each and 253 in
// all, with an optional trailing dot.
func IsDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) > 63 || !dnsLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

// IsLowerSubdomain reports whether s is a lower-case RFC 1123 subdomain of
// at most 253 characters ("api.example.com").
func IsLowerSubdomain(s string) bool {
	return len(s) <= 253 && subdomainRE.MatchString(s)
}

// IsIP reports whether s is an IPv4 or IPv6 address.
func IsIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// IsCIDR reports whether s is an address prefix such as "10.0.0.0/8".
func IsCIDR(s string) bool {
	_, err := netip.ParsePrefix(s)
	return err == nil
}

// IsHost reports whether s is a DNS name or an IP address (IPv6 optionally
// in brackets).
func IsHost(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return IsIP(s[1 : len(s)-1])
	}
	return IsIP(s) || IsDNSName(s)
}

// IsHostPort reports whether s is "host:port" with a valid host and a port
// in 1-65535.
func IsHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	return (IsIP(host) || IsDNSName(host)) && validPort(port)
}

// IsLooseURL reports whether s looks like a network address that Kuma's
// validators accept as a URL: an optional scheme ("http://"), a host (DNS
// name or IP), an optional port and an optional path. "127.0.0.1:5000",
// "collector.local/api/v2/spans" and "http://logs.com" pass; "not_valid_url"
// and "http://" do not.
func IsLooseURL(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return false
	}
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return false
	}
	if strings.HasSuffix(u.Host, ":") {
		return false
	}
	return IsHost(u.Hostname()) || (strings.Contains(u.Host, "[") && IsIP(u.Hostname()))
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}
