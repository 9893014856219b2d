package mesh

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// This file holds the small checks the kinds of this package share.

// validateAddress checks a required address that may be an IP or a DNS
// name, and must not be a wildcard.
func validateAddress(errs *validate.Errors, path validate.Path, addr string) {
	if addr == "" {
		errs.Add(path, "must be defined")
		return
	}
	validateOptionalAddress(errs, path, addr)
}

// validateOptionalAddress checks an address, when set, like validateAddress.
func validateOptionalAddress(errs *validate.Errors, path validate.Path, addr string) {
	if addr == "" {
		return
	}
	if addr == "0.0.0.0" || addr == "::" {
		errs.Add(path, "must not be 0.0.0.0 or ::")
		return
	}
	if net.ParseIP(addr) == nil && !IsDNSName(addr) {
		errs.Add(path, "must be a valid IP address or domain name")
	}
}

// validateOptionalIP checks that addr, when set, is an IP address.
func validateOptionalIP(errs *validate.Errors, path validate.Path, addr string) {
	if addr != "" && net.ParseIP(addr) == nil {
		errs.Add(path, "must be a valid IP address")
	}
}

var dnsLabelRE = regexp.MustCompile(`^[a-zA-Z0-9_]([-a-zA-Z0-9_]*[a-zA-Z0-9_])?$`)

// IsDNSName reports whether s is a syntactically valid DNS name (labels of
// letters, digits, '-' and '_', at most 63 characters each, 253 in total;
// a trailing dot is allowed).
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
	// An all-numeric name such as 1.2.3 or 999.1.1.1 is a mistyped IP.
	last := s[strings.LastIndex(s, ".")+1:]
	if _, err := strconv.Atoi(last); err == nil {
		return false
	}
	return true
}

// validatePortPtr checks an optional port.
func validatePortPtr(errs *validate.Errors, path validate.Path, p *uint32) {
	if p != nil {
		validate.Port(errs, path, *p)
	}
}

// validatePositiveDuration checks an optional duration that must be > 0
// when set (as Kuma does for probe intervals and timeouts).
func validatePositiveDuration(errs *validate.Errors, path validate.Path, d *common.Duration) {
	if d == nil {
		return
	}
	var local validate.Errors
	v := validate.Duration(&local, path, string(*d))
	errs.Merge(local)
	if local.Empty() && v == 0 {
		errs.Add(path, "must have a positive value")
	}
}

// validatePositive checks an optional count that must be > 0 when set.
func validatePositive(errs *validate.Errors, path validate.Path, n *uint32) {
	if n != nil && *n == 0 {
		errs.Add(path, "must have a positive value")
	}
}

// ParseCertDuration parses the validity periods used by certificate
// settings (mtls dpCert rotation, builtin CA caCert expiration): a Go
// duration such as "720h", or a whole number of days or years such as
// "1d" or "10y" (a year is 365 days), as Kuma accepts.
func ParseCertDuration(s string) (time.Duration, error) {
	const day = 24 * time.Hour
	for suffix, unit := range map[string]time.Duration{"d": day, "y": 365 * day} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: %w", s, err)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	return d, nil
}

// validateCertDuration checks an optional certificate validity period.
func validateCertDuration(errs *validate.Errors, path validate.Path, s string) {
	if s == "" {
		return
	}
	d, err := ParseCertDuration(s)
	switch {
	case err != nil:
		errs.Addf(path, `must be a valid duration such as "24h", "30d" or "1y": %q is not`, s)
	case d <= 0:
		errs.Add(path, "must have a positive value")
	}
}

// validateURLPath checks that p is an absolute URL path such as "/healthz".
func validateURLPath(errs *validate.Errors, path validate.Path, p string) {
	if _, err := url.ParseRequestURI(p); err != nil || !strings.HasPrefix(p, "/") {
		errs.Add(path, `must be a valid URL path such as "/healthz"`)
	}
}

// validateHostPort checks an address of the form HOST:PORT.
func validateHostPort(errs *validate.Errors, path validate.Path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		errs.Add(path, "must be in the format HOST:PORT")
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		errs.Add(path, "port must be in the range [1, 65535]")
	}
}

// validateNonEmptyList checks that every element of a list of names is set.
func validateNonEmptyList(errs *validate.Errors, path validate.Path, list []string) {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			errs.Add(path.Index(i), "must not be empty")
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }
