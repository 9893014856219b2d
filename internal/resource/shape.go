package resource

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
)

// checkShape walks a generic JSON value (decoded with UseNumber) against the
// Go type it will be decoded into, and records a violation with the full
// field path for every unknown field and every value of the wrong JSON type.
// After it passes, json.Unmarshal into t cannot fail on shape.
func checkShape(errs *validate.Errors, path validate.Path, v any, t reflect.Type) {
	if v == nil { // JSON null leaves the zero value, as encoding/json does
		return
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return
	}
	if t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return // the type checks itself; Unmarshal reports its errors
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(errs, path, v, t.Elem())
	case reflect.Struct:
		checkStruct(errs, path, v, t)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		for _, k := range validate.SortedKeys(m) {
			checkShape(errs, path.Key(k), m[k], t.Elem())
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				errs.Add(path, "must be a base64-encoded string")
			}
			return
		}
		list, ok := v.([]any)
		if !ok {
			errs.Add(path, "must be a list")
			return
		}
		for i, e := range list {
			checkShape(errs, path.Index(i), e, t.Elem())
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			errs.Add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			errs.Add(path, "must be a boolean (true or false)")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); !ok || err != nil {
			errs.Addf(path, "must be an integer that fits in %d bits", t.Bits())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); !ok || err != nil {
			errs.Addf(path, "must be a non-negative integer that fits in %d bits", t.Bits())
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if _, err := strconv.ParseFloat(string(n), t.Bits()); !ok || err != nil {
			errs.Add(path, "must be a number")
		}
	default:
		if t.Implements(textUnmarshalerType) {
			return
		}
		errs.Addf(path, "cannot be decoded into %s", t)
	}
}

func checkStruct(errs *validate.Errors, path validate.Path, v any, t reflect.Type) {
	m, ok := v.(map[string]any)
	if !ok {
		errs.Add(path, "must be an object")
		return
	}
	fields := jsonFields(t)
	for _, k := range validate.SortedKeys(m) {
		ft, known := fields[k]
		if !known {
			errs.Add(path.Field(k), "unknown field")
			continue
		}
		checkShape(errs, path.Field(k), m[k], ft)
	}
}

// jsonFields maps the JSON names of t's fields (with embedded structs
// flattened, as encoding/json does) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, shadowed := out[k]; !shadowed {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
