package httpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// redirect is a compiled RedirectAction.
type redirect struct {
	status        int
	scheme        string // "" keeps the request's scheme
	host          string // "" keeps the request's host
	port          string // "" keeps the port (see location)
	path          string // path_redirect, may carry its own query
	prefixRewrite *string
	stripQuery    bool
}

var redirectCodes = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  http.StatusMovedPermanently,
	routev3.RedirectAction_FOUND:              http.StatusFound,
	routev3.RedirectAction_SEE_OTHER:          http.StatusSeeOther,
	routev3.RedirectAction_TEMPORARY_REDIRECT: http.StatusTemporaryRedirect,
	routev3.RedirectAction_PERMANENT_REDIRECT: http.StatusPermanentRedirect,
}

func compileRedirect(a *routev3.RedirectAction, kind pathKind) (*redirect, error) {
	rd := &redirect{host: a.GetHostRedirect(), stripQuery: a.GetStripQuery()}
	var ok bool
	if rd.status, ok = redirectCodes[a.GetResponseCode()]; !ok {
		return nil, fmt.Errorf("response_code %s is not supported", a.GetResponseCode())
	}
	switch s := a.GetSchemeRewriteSpecifier().(type) {
	case *routev3.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			rd.scheme = "https"
		}
	case *routev3.RedirectAction_SchemeRedirect:
		rd.scheme = strings.ToLower(s.SchemeRedirect)
	}
	if p := a.GetPortRedirect(); p != 0 {
		if p > 65535 {
			return nil, fmt.Errorf("port_redirect %d is out of range", p)
		}
		rd.port = strconv.Itoa(int(p))
	}
	switch p := a.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PathRedirect:
		if p.PathRedirect == "" || p.PathRedirect[0] != '/' {
			return nil, fmt.Errorf("path_redirect %q must start with /", p.PathRedirect)
		}
		rd.path = p.PathRedirect
	case *routev3.RedirectAction_PrefixRewrite:
		if kind == matchRegex {
			return nil, errors.New("prefix_rewrite needs a prefix or path route match")
		}
		v := p.PrefixRewrite
		rd.prefixRewrite = &v
	}
	return rd, nil
}

// location builds the Location header for a request as Envoy does:
// scheme, host, port and path are each replaced when configured. Without a
// host_redirect, the request's host loses its port when a port_redirect
// replaces it, or when the scheme changes and the port was the default of
// the old scheme (http://web:80 -> https://web).
func (rd *redirect) location(r request, matchValue, path, pathOnly string) string {
	origScheme := "http"
	if xfp, _ := r.header("X-Forwarded-Proto"); xfp != "" {
		origScheme = xfp
	}
	scheme := origScheme
	if rd.scheme != "" {
		scheme = rd.scheme
	}
	host := rd.host
	if host == "" {
		host = r.authority()
		if h, port := splitHostPort(host); port != "" {
			strip := rd.port != "" ||
				scheme != origScheme && (origScheme == "https" && port == "443" || origScheme == "http" && port == "80")
			if strip {
				host = h
				if strings.Contains(h, ":") {
					host = "[" + h + "]"
				}
			}
		}
	}
	query := path[len(pathOnly):]
	newPath := pathOnly
	switch {
	case rd.path != "":
		newPath = rd.path
		if strings.Contains(rd.path, "?") {
			query = ""
		}
	case rd.prefixRewrite != nil && len(matchValue) <= len(pathOnly):
		newPath = *rd.prefixRewrite + pathOnly[len(matchValue):]
	}
	if rd.stripQuery {
		query = ""
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if rd.port != "" {
		b.WriteString(":")
		b.WriteString(rd.port)
	}
	b.WriteString(newPath)
	b.WriteString(query)
	return b.String()
}

// splitHostPort splits "host:port" and "[v6]:port"; a host without a port
// comes back whole with an empty port.
func splitHostPort(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}
