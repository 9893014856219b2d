package httpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
)

// hashKind is what a hash policy hashes.
type hashKind uint8

const (
	hashHeader hashKind = iota
	hashCookie
	hashSourceIP
	hashQuery
	hashFilterState
)

// hashPolicy is a compiled RouteAction.HashPolicy.
type hashPolicy struct {
	kind     hashKind
	name     string // header (canonical), cookie or query parameter name
	terminal bool
	// A cookie policy with a ttl generates the cookie when the request
	// has none (cookies.go).
	ttl      time.Duration
	path     string
	generate bool
}

func compileHashPolicies(list []*routev3.RouteAction_HashPolicy) ([]hashPolicy, error) {
	var out []hashPolicy
	for i, p := range list {
		hp, err := compileHashPolicy(p)
		if err != nil {
			return nil, fmt.Errorf("hash_policy[%d]: %w", i, err)
		}
		out = append(out, hp)
	}
	return out, nil
}

func compileHashPolicy(p *routev3.RouteAction_HashPolicy) (hashPolicy, error) {
	hp := hashPolicy{terminal: p.GetTerminal()}
	switch ps := p.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		if ps.Header.GetHeaderName() == "" {
			return hp, errors.New("header.header_name is required")
		}
		if ps.Header.GetRegexRewrite() != nil {
			return hp, errors.New("header.regex_rewrite is not supported")
		}
		hp.kind, hp.name = hashHeader, textproto.CanonicalMIMEHeaderKey(ps.Header.GetHeaderName())
	case *routev3.RouteAction_HashPolicy_Cookie_:
		c := ps.Cookie
		if c.GetName() == "" {
			return hp, errors.New("cookie.name is required")
		}
		if len(c.GetAttributes()) > 0 {
			return hp, errors.New("cookie.attributes is not supported")
		}
		ttl, err := xdsutil.Duration(c.GetTtl(), 0)
		if err != nil {
			return hp, fmt.Errorf("cookie.ttl: %w", err)
		}
		if !validCookieToken(c.GetName()) || strings.ContainsAny(c.GetPath(), ";\r\n") {
			return hp, fmt.Errorf("cookie: name %q or path %q cannot be sent in a Set-Cookie header", c.GetName(), c.GetPath())
		}
		hp.kind, hp.name, hp.path = hashCookie, c.GetName(), c.GetPath()
		if c.GetTtl() != nil {
			// Envoy generates the cookie whenever ttl is set, with
			// Max-Age 0 (a session cookie) for a zero ttl.
			hp.ttl = max(ttl, 0)
			hp.generate = true
		}
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		if !ps.ConnectionProperties.GetSourceIp() {
			return hp, errors.New("connection_properties.source_ip must be true")
		}
		hp.kind = hashSourceIP
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		if ps.QueryParameter.GetName() == "" {
			return hp, errors.New("query_parameter.name is required")
		}
		hp.kind, hp.name = hashQuery, ps.QueryParameter.GetName()
	case *routev3.RouteAction_HashPolicy_FilterState_:
		if ps.FilterState.GetKey() == "" {
			return hp, errors.New("filter_state.key is required")
		}
		// trellis-dp's filters set no filter state: the policy never
		// gives a key, as in Envoy when the key is absent.
		hp.kind, hp.name = hashFilterState, ps.FilterState.GetKey()
	default:
		return hp, errors.New("a policy (header, cookie, connection_properties, query_parameter or filter_state) is required")
	}
	return hp, nil
}

// needsSource reports whether a policy hashes the downstream address or
// generates a cookie (from the connection's addresses), which only the
// net/http path knows.
func needsSource(ps []hashPolicy) bool {
	for _, p := range ps {
		if p.kind == hashSourceIP || p.generate {
			return true
		}
	}
	return false
}

// hashSource is what hash policies read of a request beyond the request
// interface: the :path and the downstream address.
type hashSource interface {
	hashPath() string
	sourceAddr() string
}

func (n netRequest) hashPath() string {
	p, _ := requestPath(n.r)
	return p
}

func (n netRequest) sourceAddr() string { return n.r.RemoteAddr }

func (r *h1Request) hashPath() string { return r.target }

// sourceAddr is unknown on the fast path: routes hashing it are served by
// net/http.
func (r *h1Request) sourceAddr() string { return "" }

// hashKey returns the key of the route's hash_policy for a request and
// whether some policy produced one, as Envoy combines them: each policy
// that finds its input hashes it with xxHash64, the running key is rotated
// left by one bit and XORed with it, and a terminal policy that produced
// a hash ends the list.
func (r *route) hashKey(req request) (uint64, bool) {
	if len(r.hash) == 0 {
		return 0, false
	}
	src, _ := req.(hashSource)
	var key uint64
	has := false
	for i := range r.hash {
		p := &r.hash[i]
		v, ok := p.input(req, src)
		if !ok {
			continue
		}
		h := xxhash.Sum64String(v)
		if has {
			key = (key<<1 | key>>63) ^ h
		} else {
			key, has = h, true
		}
		if p.terminal {
			break
		}
	}
	return key, has
}

// input returns what the policy hashes, and whether the request has it.
func (p *hashPolicy) input(req request, src hashSource) (string, bool) {
	switch p.kind {
	case hashHeader:
		return req.header(p.name)
	case hashCookie:
		if n, ok := req.(netRequest); ok {
			// HTTP/2 may split cookies over several fields.
			if c, ok := cookieValue(strings.Join(n.r.Header["Cookie"], "; "), p.name); ok {
				return c, true
			}
		} else if v, ok := req.header("Cookie"); ok {
			if c, ok := cookieValue(v, p.name); ok {
				return c, true
			}
		}
		if p.generate {
			if n, ok := req.(netRequest); ok {
				return generatedCookie(n.r, p.name)
			}
		}
		return "", false
	case hashSourceIP:
		if src == nil {
			return "", false
		}
		addr := src.sourceAddr()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
		return addr, addr != ""
	case hashQuery:
		if src == nil {
			return "", false
		}
		return queryParam(queryOf(src.hashPath()), p.name)
	}
	return "", false
}

// cookieValue returns the value of the named cookie in a Cookie header.
func cookieValue(header, name string) (string, bool) {
	cookies, err := http.ParseCookie(header)
	if err != nil {
		// One bad pair spoils ParseCookie's answer: look pair by pair.
		cookies = nil
		for _, part := range splitCookies(header) {
			if cs, err := http.ParseCookie(part); err == nil {
				cookies = append(cookies, cs...)
			}
		}
	}
	for _, c := range cookies {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

func splitCookies(h string) []string {
	var out []string
	for len(h) > 0 {
		var part string
		part, h, _ = cutByte(h, ';')
		out = append(out, part)
	}
	return out
}

func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
