package format

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// JSON is a compiled JSON format (Envoy's json_format): an object whose
// string values are format strings and whose object values are nested
// JSON formats. Keys render sorted.
type JSON struct {
	fields []jsonField
	// OmitEmpty leaves out the fields whose value is one operator without
	// a value (else they render as null).
	OmitEmpty bool
}

type jsonField struct {
	key    string
	value  *Format
	nested *JSON
}

// ParseJSON compiles a JSON format: values are strings (format strings)
// or map[string]any (nested objects). Errors name the key.
func ParseJSON(m map[string]any) (*JSON, error) {
	j := &JSON{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			f, err := Parse(v)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			j.fields = append(j.fields, jsonField{key: k, value: f})
		case map[string]any:
			n, err := ParseJSON(v)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			j.fields = append(j.fields, jsonField{key: k, nested: n})
		default:
			return nil, fmt.Errorf("key %q: %w: values must be strings or objects, not %T", k, ErrSyntax, v)
		}
	}
	return j, nil
}

// Append renders the object for e at the end of buf (one line, no
// newline).
func (j *JSON) Append(buf []byte, e *Entry) []byte {
	var scratch [256]byte
	return j.append(buf, e, scratch[:0])
}

func (j *JSON) append(buf []byte, e *Entry, scratch []byte) []byte {
	buf = append(buf, '{')
	first := true
	for i := range j.fields {
		f := &j.fields[i]
		if f.nested != nil {
			buf = sep(buf, &first)
			buf = AppendJSONString(buf, f.key)
			buf = append(buf, ':')
			buf = f.nested.append(buf, e, scratch)
			continue
		}
		if f.value.single {
			s := &f.value.segs[0]
			v, ok := s.appendValue(scratch[:0], e)
			if !ok && j.OmitEmpty {
				continue
			}
			buf = sep(buf, &first)
			buf = AppendJSONString(buf, f.key)
			buf = append(buf, ':')
			switch {
			case !ok:
				buf = append(buf, "null"...)
			case s.numeric() && s.maxLen == 0:
				buf = append(buf, v...)
			default:
				if s.maxLen > 0 && len(v) > s.maxLen {
					v = v[:s.maxLen]
				}
				buf = appendJSONBytes(buf, v)
			}
			continue
		}
		buf = sep(buf, &first)
		buf = AppendJSONString(buf, f.key)
		buf = append(buf, ':')
		buf = appendJSONBytes(buf, f.value.Append(scratch[:0], e))
	}
	return append(buf, '}')
}

func sep(buf []byte, first *bool) []byte {
	if *first {
		*first = false
		return buf
	}
	return append(buf, ',')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(buf []byte, s string) []byte {
	return appendJSONBytes(buf, []byte(s))
}

func appendJSONBytes(buf, s []byte) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20 || c == 0x7f:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+n]...)
		}
		i += n
	}
	return append(buf, '"')
}
