// Package validate holds the field-path errors that every Trellis resource
// validator returns, and the small checks (names, ports, durations, enums)
// that many resource kinds share.
//
// A validator walks its spec with a Path, and appends one Violation per
// problem with the full field path of the offending value, for example
// "spec.to[0].default.connectionTimeout". The API server turns Violations into
// the "invalid_parameters" list of Kuma's std-errors JSON.
package validate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Violation is one invalid field and the reason it is invalid.
type Violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Errors is a list of violations. The zero value holds none and is ready to
// use. It implements error only through Err, so that a nil *Errors never
// hides inside a non-nil error interface.
type Errors struct {
	Violations []Violation
}

// Add records a violation at path.
func (e *Errors) Add(path Path, reason string) {
	e.Violations = append(e.Violations, Violation{Field: path.String(), Reason: reason})
}

// Addf records a formatted violation at path.
func (e *Errors) Addf(path Path, format string, args ...any) {
	e.Add(path, fmt.Sprintf(format, args...))
}

// Merge appends all violations of other.
func (e *Errors) Merge(other Errors) {
	e.Violations = append(e.Violations, other.Violations...)
}

// Empty reports whether no violation was recorded.
func (e *Errors) Empty() bool { return len(e.Violations) == 0 }

// Err returns nil when no violation was recorded, else an *Error holding them.
func (e *Errors) Err() error {
	if e.Empty() {
		return nil
	}
	return &Error{Violations: append([]Violation(nil), e.Violations...)}
}

// Error is the error form of a non-empty list of violations. Callers find it
// with errors.As to render field paths.
type Error struct {
	Violations []Violation
}

// Error renders the violations as "field: reason; field: reason".
func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		if v.Field == "" {
			parts = append(parts, v.Reason)
			continue
		}
		parts = append(parts, v.Field+": "+v.Reason)
	}
	return strings.Join(parts, "; ")
}

// Prefixed returns a copy of err's violations with prefix put before every
// field path ("spec" + "to[0]" = "spec.to[0]").
func Prefixed(prefix Path, err *Error) *Error {
	out := &Error{Violations: make([]Violation, len(err.Violations))}
	for i, v := range err.Violations {
		out.Violations[i] = Violation{Field: prefix.join(v.Field), Reason: v.Reason}
	}
	return out
}

// Path is a field path such as "spec.to[0].default". The zero value is the root.
type Path struct {
	s string
}

// Root returns the root path; Root().Field("spec") is "spec".
func Root() Path { return Path{} }

// NewPath returns the path with the given dotted text.
func NewPath(s string) Path { return Path{s: s} }

// Field returns the path of a named child field.
func (p Path) Field(name string) Path { return Path{s: p.join(name)} }

// Index returns the path of a list element.
func (p Path) Index(i int) Path { return Path{s: p.s + "[" + strconv.Itoa(i) + "]"} }

// Key returns the path of a map entry, quoted as Kuma does: labels["k"].
func (p Path) Key(k string) Path { return Path{s: p.s + "[" + strconv.Quote(k) + "]"} }

// String returns the dotted path text.
func (p Path) String() string { return p.s }

func (p Path) join(child string) string {
	switch {
	case p.s == "":
		return child
	case child == "":
		return p.s
	case strings.HasPrefix(child, "["):
		return p.s + child
	default:
		return p.s + "." + child
	}
}

// nameRE is Kuma's rule for resource names: lowercase letters, digits, '-'
// and '.', starting and ending with a letter or digit.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// MaxNameLength is the longest resource name accepted, as in Kuma.
const MaxNameLength = 253

// Name checks a resource or mesh name and returns the reason it is invalid,
// or "" when it is valid.
func Name(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > MaxNameLength:
		return fmt.Sprintf("must be at most %d characters long", MaxNameLength)
	case !nameRE.MatchString(name):
		return "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
	}
	return ""
}

// Port checks that p is a TCP/UDP port number (1-65535).
func Port(errs *Errors, path Path, p uint32) {
	if p < 1 || p > 65535 {
		errs.Add(path, "port must be in the range [1, 65535]")
	}
}

// Duration parses a Go duration string such as "10s" or "1m30s" and records a
// violation at path when it is malformed or negative. It returns the parsed
// duration (zero on error).
func Duration(errs *Errors, path Path, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		errs.Addf(path, "must be a valid duration such as \"10s\" or \"1m30s\": %q is not", s)
		return 0
	}
	if d < 0 {
		errs.Add(path, "must not be negative")
		return 0
	}
	return d
}

// Enum records a violation at path when value is not one of allowed.
func Enum(errs *Errors, path Path, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	errs.Addf(path, "unknown value %q: must be one of %s", value, strings.Join(allowed, ", "))
}

// Required records a violation at path when s is empty.
func Required(errs *Errors, path Path, s string) bool {
	if s == "" {
		errs.Add(path, "must be defined")
		return false
	}
	return true
}

// SortedKeys returns the keys of m in lexical order, for deterministic walks.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
