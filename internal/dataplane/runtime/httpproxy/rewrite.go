package httpproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/strmatch"
)

// pathRewrite is a compiled prefix_rewrite or regex_rewrite.
type pathRewrite struct {
	prefix    string // prefix_rewrite, when re is nil
	re        *regexp.Regexp
	sub       string   // regex_rewrite.substitution in Go's syntax
	matchKind pathKind // how the route matches: what prefix_rewrite replaces
	matched   string   // the route's prefix or path
}

func compilePathRewrite(a *routev3.RouteAction, m *routeMatch) (*pathRewrite, error) {
	pr, rr := a.GetPrefixRewrite(), a.GetRegexRewrite()
	switch {
	case pr != "" && rr != nil:
		return nil, errors.New("prefix_rewrite and regex_rewrite are mutually exclusive")
	case pr != "":
		if !validTargetChars(pr) {
			return nil, fmt.Errorf("prefix_rewrite %q has characters a request target cannot carry", pr)
		}
		if m.kind == matchRegex {
			return nil, errors.New("prefix_rewrite needs a prefix, path or path_separated_prefix match")
		}
		return &pathRewrite{prefix: pr, matchKind: m.kind, matched: m.value}, nil
	case rr != nil:
		if rr.GetPattern() == nil {
			return nil, errors.New("regex_rewrite.pattern is required")
		}
		// Not anchored: every match is replaced, as RE2's GlobalReplace.
		if _, err := strmatch.CompileRegex(rr.GetPattern()); err != nil {
			return nil, fmt.Errorf("regex_rewrite.pattern: %w", err)
		}
		re, err := regexp.Compile(rr.GetPattern().GetRegex())
		if err != nil {
			return nil, fmt.Errorf("regex_rewrite.pattern: %w", err)
		}
		if !validTargetChars(rr.GetSubstitution()) {
			return nil, fmt.Errorf("regex_rewrite.substitution %q has characters a request target cannot carry", rr.GetSubstitution())
		}
		sub, err := goSubstitution(rr.GetSubstitution())
		if err != nil {
			return nil, fmt.Errorf("regex_rewrite.substitution: %w", err)
		}
		return &pathRewrite{re: re, sub: sub}, nil
	}
	return nil, nil
}

// goSubstitution turns an RE2 substitution (\1 for a group, \\ for a
// backslash) into regexp.Expand's syntax (${1}, $$ for a dollar).
func goSubstitution(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			b.WriteString("$$")
		case c == '\\':
			if i+1 >= len(s) {
				return "", errors.New("ends with a lone backslash")
			}
			i++
			switch d := s[i]; {
			case d == '\\':
				b.WriteByte('\\')
			case '0' <= d && d <= '9':
				b.WriteString("${")
				b.WriteByte(d)
				b.WriteByte('}')
			default:
				return "", fmt.Errorf("invalid escape \\%c", d)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// apply rewrites a :path (query included). prefix_rewrite replaces the
// matched prefix (path_separated_prefix, prefix) or the whole path (path);
// regex_rewrite replaces every match in the path without its query, as
// Envoy does. The query is kept.
func (p *pathRewrite) apply(path string) string {
	pathOnly, query := path, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		pathOnly, query = path[:i], path[i:]
	}
	var out string
	switch {
	case p.re != nil:
		out = p.re.ReplaceAllString(pathOnly, p.sub) + query
	case p.matchKind == matchPath:
		out = p.prefix + query
	case strings.HasPrefix(path, p.matched):
		out = p.prefix + path[len(p.matched):]
	default:
		return path
	}
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	return out
}

// validTargetChars reports whether s has no space, control or non-ASCII
// byte, which a request line cannot carry.
func validTargetChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// applyRequest applies the route's rewrites and request header edits to
// a request of the net/http path, in place, before it is forwarded.
func (r *route) applyRequest(req *http.Request) {
	if r.rewrite != nil {
		path, _ := requestPath(req)
		setPath(req.URL, r.rewrite.apply(path))
	}
	if r.hostRewrite != "" {
		req.Host = r.hostRewrite
	}
	r.reqMods.applyHeader(req.Header)
}

// setPath sets the path and query of u from a :path.
func setPath(u *url.URL, path string) {
	rawPath, query, _ := strings.Cut(path, "?")
	u.RawQuery = query
	if p, err := url.PathUnescape(rawPath); err == nil {
		u.Path, u.RawPath = p, rawPath
		if u.EscapedPath() != rawPath {
			u.RawPath = ""
		}
	} else {
		u.Path, u.RawPath = rawPath, ""
	}
}

// applyResponse applies the route's response header edits and sets the
// cookies its hash policies generated for req (net/http path).
func (r *route) applyResponse(req *http.Request, h http.Header) {
	r.respMods.applyHeader(h)
	setGeneratedCookies(req, h)
}

// applyRequestH1 applies the route's rewrites and request header edits to
// a request of the fast path, in place, before it is forwarded.
func (r *route) applyRequestH1(req *h1Request) {
	if r.rewrite != nil {
		req.target = r.rewrite.apply(req.target)
	}
	if r.hostRewrite != "" {
		req.host = r.hostRewrite
	}
	if len(r.reqMods) > 0 {
		var touched uint8
		req.fields, touched = r.reqMods.applyFields(req.fields, "X-Request-Id", "X-Forwarded-Proto")
		// Removed or set by the route: not generated.
		req.hasXRID = req.hasXRID || touched&1 != 0
		req.hasXFP = req.hasXFP || touched&2 != 0
	}
}

// applyResponseH1 applies the route's response header edits to a
// response of the fast path before its head is written.
func (r *route) applyResponseH1(resp *h1Response) {
	if len(r.respMods) > 0 {
		resp.fields, _ = r.respMods.applyFields(resp.fields)
	}
}
