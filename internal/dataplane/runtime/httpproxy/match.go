package httpproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/strmatch"
)

// pathKind is how a route matches the request path.
type pathKind uint8

const (
	matchPrefix    pathKind = iota // :path starts with value (query included, as Envoy)
	matchPath                      // path without query equals value
	matchRegex                     // path without query fully matches re
	matchSeparated                 // path without query is value or starts with value + "/"
)

// routeMatch is a compiled RouteMatch.
type routeMatch struct {
	kind    pathKind
	value   string
	re      *regexp.Regexp
	headers []headerMatch
	query   []queryMatch
}

func compileRouteMatch(m *routev3.RouteMatch) (routeMatch, error) {
	var rm routeMatch
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rm.kind, rm.value = matchPrefix, ps.Prefix
	case *routev3.RouteMatch_Path:
		rm.kind, rm.value = matchPath, ps.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := strmatch.CompileRegex(ps.SafeRegex)
		if err != nil {
			return rm, fmt.Errorf("safe_regex: %w", err)
		}
		rm.kind, rm.re = matchRegex, re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		v := ps.PathSeparatedPrefix
		if v == "" || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "?#") {
			return rm, fmt.Errorf("path_separated_prefix %q must not be empty, end with '/' or contain '?' or '#'", v)
		}
		rm.kind, rm.value = matchSeparated, v
	default:
		return rm, errors.New("one of prefix, path, path_separated_prefix or safe_regex is required")
	}
	for i, h := range m.GetHeaders() {
		hm, err := compileHeaderMatch(h)
		if err != nil {
			return rm, fmt.Errorf("headers[%d]: %w", i, err)
		}
		rm.headers = append(rm.headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qm, err := compileQueryMatch(q)
		if err != nil {
			return rm, fmt.Errorf("query_parameters[%d]: %w", i, err)
		}
		rm.query = append(rm.query, qm)
	}
	return rm, nil
}

// request is what routing and redirects read of a request, whichever
// HTTP/1.1 server parsed it: net/http (netRequest) or the fast path
// (*h1Request).
type request interface {
	// authority is the Host header (HTTP/1.1) or :authority (HTTP/2).
	authority() string
	// method is the request method.
	method() string
	// header returns the values of the header with the given canonical
	// name, several joined by commas as Envoy does, and whether it is
	// present.
	header(name string) (string, bool)
}

// netRequest is a request parsed by net/http.
type netRequest struct{ r *http.Request }

func (n netRequest) authority() string { return n.r.Host }
func (n netRequest) method() string    { return n.r.Method }

func (n netRequest) header(name string) (string, bool) {
	vv := n.r.Header[name]
	switch len(vv) {
	case 0:
		return "", false
	case 1:
		return vv[0], true
	default:
		return strings.Join(vv, ","), true
	}
}

// matches reports whether the request matches. path is the request's
// :path (with query); pathOnly is the same without the query.
func (m *routeMatch) matches(r request, path, pathOnly string) bool {
	switch m.kind {
	case matchPrefix:
		if !strings.HasPrefix(path, m.value) {
			return false
		}
	case matchPath:
		if pathOnly != m.value {
			return false
		}
	case matchRegex:
		if !m.re.MatchString(pathOnly) {
			return false
		}
	case matchSeparated:
		if !strings.HasPrefix(pathOnly, m.value) || len(pathOnly) > len(m.value) && pathOnly[len(m.value)] != '/' {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(r, path) {
			return false
		}
	}
	if len(m.query) > 0 {
		query := queryOf(path)
		for i := range m.query {
			if !m.query[i].matches(query) {
				return false
			}
		}
	}
	return true
}

// headerMatch is a compiled HeaderMatcher. Pseudo-headers :authority,
// :method, :path and :scheme are matched against the request line.
type headerMatch struct {
	name    string // canonical header key, or a pseudo-header
	present *bool  // present_match
	str     *strmatch.Matcher
	invert  bool
}

func compileHeaderMatch(h *routev3.HeaderMatcher) (headerMatch, error) {
	hm := headerMatch{invert: h.GetInvertMatch()}
	switch name := h.GetName(); {
	case name == "":
		return hm, errors.New("name is required")
	case strings.HasPrefix(name, ":"):
		switch name {
		case ":authority", ":method", ":path", ":scheme":
			hm.name = name
		default:
			return hm, fmt.Errorf("pseudo-header %q is not supported", name)
		}
	default:
		hm.name = textproto.CanonicalMIMEHeaderKey(name)
	}
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		present := spec.PresentMatch
		hm.present = &present
	case *routev3.HeaderMatcher_StringMatch:
		sm, err := strmatch.Compile(spec.StringMatch)
		if err != nil {
			return hm, fmt.Errorf("string_match: %w", err)
		}
		hm.str = &sm
	default:
		return hm, errors.New("string_match or present_match is required")
	}
	return hm, nil
}

func (h *headerMatch) matches(r request, path string) bool {
	value, ok := h.value(r, path)
	var m bool
	if h.present != nil {
		m = ok == *h.present
	} else {
		m = ok && h.str.Match(value)
	}
	return m != h.invert
}

// value returns the header's value, several values joined by commas as
// Envoy does, and whether the header is present.
func (h *headerMatch) value(r request, path string) (string, bool) {
	switch h.name {
	case ":authority":
		return r.authority(), true
	case ":method":
		return r.method(), true
	case ":path":
		return path, true
	case ":scheme":
		return "http", true
	}
	return r.header(h.name)
}

// requestPath returns the request's :path as sent (query included) and the
// same without query and fragment.
func requestPath(r *http.Request) (path, pathOnly string) {
	path = r.RequestURI
	if path == "" || path[0] != '/' {
		// Absolute-form (proxy-style) request target, or '*'.
		path = r.URL.RequestURI()
	}
	pathOnly = path
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		pathOnly = path[:i]
	}
	return path, pathOnly
}
