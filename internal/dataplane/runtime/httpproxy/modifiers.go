package httpproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerMods are the header edits of one level of a RouteConfiguration
// (a Route, its VirtualHost, the RouteConfiguration): the removals first,
// then the additions in order, as Envoy's header parser applies them.
type headerMods struct {
	remove []string // canonical names
	add    []headerAdd
}

// headerAdd is a compiled HeaderValueOption.
type headerAdd struct {
	name  string // canonical, for net/http
	wire  string // as configured, for the fast path
	value string
	mode  corev3.HeaderValueOption_HeaderAppendAction
}

// modLevels are the levels of header edits that apply to a route, the
// most specific first (route, virtual host, route configuration).
type modLevels []*headerMods

// compileHeaderMods compiles one level's headers to add and remove; nil
// when there are none.
func compileHeaderMods(add []*corev3.HeaderValueOption, remove []string, addField, removeField string) (*headerMods, error) {
	if len(add) == 0 && len(remove) == 0 {
		return nil, nil
	}
	m := &headerMods{}
	for i, name := range remove {
		if err := checkModifiable(name); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", removeField, i, err)
		}
		m.remove = append(m.remove, textproto.CanonicalMIMEHeaderKey(name))
	}
	for i, o := range add {
		a, keep, err := compileHeaderAdd(o)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", addField, i, err)
		}
		if keep {
			m.add = append(m.add, a)
		}
	}
	return m, nil
}

// compileHeaderAdd compiles a HeaderValueOption. keep is false for an
// empty value without keep_empty_value, which Envoy does not add.
func compileHeaderAdd(o *corev3.HeaderValueOption) (a headerAdd, keep bool, err error) {
	h := o.GetHeader()
	if h == nil {
		return a, false, errors.New("header is required")
	}
	if err := checkModifiable(h.GetKey()); err != nil {
		return a, false, fmt.Errorf("header.key: %w", err)
	}
	if h.GetRawValue() != nil {
		return a, false, errors.New("header.raw_value is not supported (use value)")
	}
	value, err := literalValue(h.GetValue())
	if err != nil {
		return a, false, fmt.Errorf("header.value: %w", err)
	}
	a = headerAdd{name: textproto.CanonicalMIMEHeaderKey(h.GetKey()), wire: strings.ToLower(h.GetKey()), value: value, mode: o.GetAppendAction()}
	if ap := o.GetAppend(); ap != nil {
		if a.mode != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			return a, false, errors.New("append and append_action are both set")
		}
		if !ap.GetValue() {
			a.mode = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		}
	}
	switch a.mode {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, corev3.HeaderValueOption_ADD_IF_ABSENT,
		corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
	default:
		return a, false, fmt.Errorf("append_action %s is not supported", a.mode)
	}
	return a, value != "" || o.GetKeepEmptyValue(), nil
}

// checkModifiable rejects names Envoy does not let routes edit (pseudo
// headers, Host) and those the proxy owns for framing and connection
// management.
func checkModifiable(name string) error {
	if name == "" {
		return errors.New("the header name is empty")
	}
	if !validFieldName(name) {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade", "te":
		return fmt.Errorf("header %q cannot be modified", name)
	}
	return nil
}

func validFieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// literalValue returns a header value with Envoy's "%%" escapes undone.
// Envoy expands %COMMAND% operators in values; trellis-dp implements none,
// so a value with one is refused rather than sent as written.
func literalValue(v string) (string, error) {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", errors.New("the value contains CR, LF or NUL")
	}
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("%q: command operators (%%...%%) are not supported; write %%%% for a literal %%", v)
	}
	return b.String(), nil
}

// noValues is a header present without values (see applyHeader).
var noValues = []string{}

// applyHeader edits a net/http header map.
func (l modLevels) applyHeader(h http.Header) {
	for _, m := range l {
		for _, name := range m.remove {
			if name == "X-Request-Id" || name == "X-Forwarded-Proto" {
				// Present without a value: prepareRequestHeader does not
				// generate it again, nothing is sent.
				h[name] = noValues
				continue
			}
			delete(h, name)
		}
		for i := range m.add {
			a := &m.add[i]
			exists := len(h[a.name]) > 0
			switch a.mode {
			case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
				h[a.name] = append(h[a.name][:len(h[a.name]):len(h[a.name])], a.value)
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				if !exists {
					h[a.name] = []string{a.value}
				}
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				h[a.name] = []string{a.value}
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				if exists {
					h[a.name] = []string{a.value}
				}
			}
		}
	}
}

// applyFields edits the fields of a head parsed by the fast path: removed
// fields are marked not to be forwarded, added ones appended. It returns
// whether a field named like one of the given names (the fields the
// fast path adds itself when absent) was removed or added.
func (l modLevels) applyFields(fields []field, managed ...string) (out []field, touched uint8) {
	mark := func(name string) {
		for j, n := range managed {
			if strings.EqualFold(n, name) {
				touched |= 1 << j
			}
		}
	}
	for _, m := range l {
		for _, name := range m.remove {
			for i := range fields {
				if !fields[i].hop && strings.EqualFold(fields[i].name, name) {
					fields[i].hop = true
				}
			}
			mark(name)
		}
		for i := range m.add {
			a := &m.add[i]
			exists := false
			for j := range fields {
				if !fields[j].hop && strings.EqualFold(fields[j].name, a.name) {
					exists = true
					break
				}
			}
			add := true
			switch a.mode {
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				add = !exists
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				add = exists
			}
			if !add {
				continue
			}
			if exists && a.mode != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD && a.mode != corev3.HeaderValueOption_ADD_IF_ABSENT {
				for j := range fields {
					if !fields[j].hop && strings.EqualFold(fields[j].name, a.name) {
						fields[j].hop = true
					}
				}
			}
			fields = append(fields, field{name: a.wire, value: a.value})
			mark(a.name)
		}
	}
	return fields, touched
}
