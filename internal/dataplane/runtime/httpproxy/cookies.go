package httpproxy

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Cookie generation of hash policies, as Envoy's router does it: a cookie
// policy with a ttl whose cookie the request lacks hashes a value made
// from the connection's addresses instead (the same for every request of
// the connection), and the response sets that cookie
// (name="value"; Max-Age=ttl; Path=path; HttpOnly) so that the client's
// next requests carry it. Only the net/http path does this (it knows the
// addresses); routes with such a policy are served by it.

// cookieCtxKey keys the cookies generated for a request in its context.
type cookieCtxKey struct{}

// genCookie is a cookie generated for a request.
type genCookie struct {
	name, value, setCookie string
}

// generateCookies returns r with the cookies its route's hash policies
// generate (r itself when none is needed). Call it before the hash key is
// computed and the response written.
func (rt *route) generateCookies(r *http.Request) *http.Request {
	var out []genCookie
	for i := range rt.hash {
		p := &rt.hash[i]
		if !p.generate {
			continue
		}
		if _, ok := cookieValue(strings.Join(r.Header["Cookie"], "; "), p.name); ok {
			continue
		}
		v := connectionCookieValue(r)
		sc := p.name + `="` + v + `"; Max-Age=` + strconv.FormatInt(int64(p.ttl.Seconds()), 10)
		if p.path != "" {
			sc += "; Path=" + p.path
		}
		sc += "; HttpOnly"
		out = append(out, genCookie{name: p.name, value: v, setCookie: sc})
	}
	if out == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), cookieCtxKey{}, out))
}

// connectionCookieValue is the generated value: the hex xxHash64 of the
// downstream's remote then local address.
func connectionCookieValue(r *http.Request) string {
	s := r.RemoteAddr
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s += la.String()
	}
	v := strconv.FormatUint(xxhash.Sum64String(s), 16)
	for len(v) < 16 {
		v = "0" + v
	}
	return v
}

// generatedCookie returns the value generated for the named cookie.
func generatedCookie(r *http.Request, name string) (string, bool) {
	cs, _ := r.Context().Value(cookieCtxKey{}).([]genCookie)
	for _, c := range cs {
		if c.name == name {
			return c.value, true
		}
	}
	return "", false
}

// setGeneratedCookies adds the Set-Cookie fields of the cookies generated
// for r to a response header.
func setGeneratedCookies(r *http.Request, h http.Header) {
	cs, _ := r.Context().Value(cookieCtxKey{}).([]genCookie)
	for _, c := range cs {
		h["Set-Cookie"] = append(h["Set-Cookie"], c.setCookie)
	}
}

// validCookieToken reports whether name can be a cookie name.
func validCookieToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '=' || c == ';' || c == ',' || c == '"' {
			return false
		}
	}
	return true
}
