// Package strmatch compiles Envoy's type.matcher.v3.StringMatcher (exact,
// prefix, suffix, contains, safe_regex, with ignore_case) into a value
// that matches strings without allocating. Route header matching, SAN
// matching of TLS peers and RBAC principals all use it.
package strmatch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// Kind is the match pattern of a Matcher.
type Kind uint8

// The match patterns of a StringMatcher.
const (
	Exact Kind = iota
	Prefix
	Suffix
	Contains
	Regex
)

// Matcher is a compiled StringMatcher. The zero value matches only the
// empty string.
type Matcher struct {
	kind       Kind
	value      string
	re         *regexp.Regexp
	ignoreCase bool
}

// Compile checks and compiles m.
func Compile(m *matcherv3.StringMatcher) (Matcher, error) {
	sm := Matcher{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		sm.kind, sm.value = Exact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		sm.kind, sm.value = Prefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		sm.kind, sm.value = Suffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		sm.kind, sm.value = Contains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := CompileRegex(p.SafeRegex)
		if err != nil {
			return sm, fmt.Errorf("safe_regex: %w", err)
		}
		sm.kind, sm.re = Regex, re
	default:
		return sm, errors.New("a match pattern is required")
	}
	if sm.ignoreCase {
		sm.value = strings.ToLower(sm.value)
	}
	return sm, nil
}

// CompileRegex compiles an RE2 regex that must match the whole input, as
// Envoy's safe_regex does.
func CompileRegex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if m.GetRegex() == "" {
		return nil, errors.New("regex is required")
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", m.GetRegex(), err)
	}
	return re, nil
}

// Kind returns the match pattern.
func (m *Matcher) Kind() Kind { return m.kind }

// Match reports whether s matches.
func (m *Matcher) Match(s string) bool {
	if m.kind == Regex {
		return m.re.MatchString(s)
	}
	if m.ignoreCase {
		s = strings.ToLower(s)
	}
	switch m.kind {
	case Exact:
		return s == m.value
	case Prefix:
		return strings.HasPrefix(s, m.value)
	case Suffix:
		return strings.HasSuffix(s, m.value)
	default:
		return strings.Contains(s, m.value)
	}
}

// String describes the matcher for logs: prefix "spiffe://default/".
func (m *Matcher) String() string {
	names := [...]string{"exact", "prefix", "suffix", "contains", "safe_regex"}
	v := m.value
	if m.kind == Regex {
		v = m.re.String()
	}
	return fmt.Sprintf("%s %q", names[m.kind], v)
}
