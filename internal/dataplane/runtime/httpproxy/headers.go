package httpproxy

import (
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the connection-specific headers a proxy does not forward
// (RFC 9110 §7.6.1), as Envoy removes them. TE is handled apart: "TE:
// trailers" is forwarded (gRPC needs it).
var hopByHop = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop deletes the hop-by-hop headers and those the Connection
// header names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for token := range strings.SplitSeq(v, ",") {
			if token = textproto.TrimString(token); token != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(token))
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

// prepareRequestHeader edits the headers of a request going upstream like
// Envoy's connection manager with its defaults (use_remote_address false):
// hop-by-hop headers go, "TE: trailers" stays, x-forwarded-for is passed on
// unchanged, x-forwarded-proto is set when absent, and x-request-id is
// generated when absent.
func prepareRequestHeader(h http.Header) {
	te, hasTE := h["Te"]
	removeHopByHop(h)
	if hasTE {
		delete(h, "Te")
		for _, v := range te {
			if hasToken(v, "trailers") {
				h["Te"] = teTrailers
				break
			}
		}
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		h["X-Forwarded-Proto"] = schemeHTTP
	}
	if _, ok := h["X-Request-Id"]; !ok {
		h["X-Request-Id"] = []string{newRequestID()}
	}
}

var teTrailers = []string{"trailers"}

// prepareResponseHeader removes the hop-by-hop headers of an upstream
// response.
func prepareResponseHeader(h http.Header) {
	removeHopByHop(h)
	delete(h, "Te")
	delete(h, "Trailer")
}

func hasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(t), token) {
			return true
		}
	}
	return false
}

// newRequestID returns a random (version 4) UUID, as Envoy generates for
// x-request-id.
func newRequestID() string {
	var b [36]byte
	return string(appendRequestID(b[:0]))
}

// appendRequestID appends a random (version 4) UUID to dst. It uses the
// runtime's fast per-thread generator: request IDs need uniqueness, not
// secrecy.
func appendRequestID(dst []byte) []byte {
	const hexdigits = "0123456789abcdef"
	var u [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexdigits[c>>4], hexdigits[c&0x0f])
	}
	return dst
}
