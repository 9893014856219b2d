package httpproxy

import (
	"errors"
	"net/url"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/strmatch"
)

// queryMatch is a compiled QueryParameterMatcher: the parameter's first
// value, percent-decoded as Envoy decodes it, against string_match, or its
// presence (present_match).
type queryMatch struct {
	name    string
	present bool // present_match: true
	str     *strmatch.Matcher
}

func compileQueryMatch(q *routev3.QueryParameterMatcher) (queryMatch, error) {
	qm := queryMatch{name: q.GetName()}
	if qm.name == "" {
		return qm, errors.New("name is required")
	}
	switch spec := q.GetQueryParameterMatchSpecifier().(type) {
	case *routev3.QueryParameterMatcher_PresentMatch:
		if !spec.PresentMatch {
			return qm, errors.New("present_match must be true (Envoy matches nothing else)")
		}
		qm.present = true
	case *routev3.QueryParameterMatcher_StringMatch:
		sm, err := strmatch.Compile(spec.StringMatch)
		if err != nil {
			return qm, err
		}
		qm.str = &sm
	default:
		return qm, errors.New("string_match or present_match is required")
	}
	return qm, nil
}

func (q *queryMatch) matches(query string) bool {
	v, ok := queryParam(query, q.name)
	if !ok {
		return false
	}
	return q.present || q.str.Match(v)
}

// queryOf returns the query of a :path, without '?' and fragment.
func queryOf(path string) string {
	i := strings.IndexByte(path, '?')
	if i < 0 {
		return ""
	}
	q := path[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	return q
}

// queryParam returns the first value of the query parameter name
// (compared after decoding), percent-decoded; a value that does not
// decode is returned as sent.
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			if dk, err := url.QueryUnescape(k); err != nil || dk != name {
				continue
			}
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		return v, true
	}
	return "", false
}
