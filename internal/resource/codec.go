package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/validate"
)

// Sentinel errors of the codec; match them with errors.Is.
var (
	// ErrMalformed: the document is not valid YAML/JSON or not an object.
	ErrMalformed = errors.New("malformed resource document")
	// ErrUnknownKind: the "type" names no kind Trellis knows.
	ErrUnknownKind = errors.New("unknown resource type")
	// ErrNotSupported: a Kuma kind that Trellis does not serve yet.
	ErrNotSupported = errors.New("resource type not supported yet")
)

// Fields of the document that are not part of the spec.
const (
	fieldType             = "type"
	fieldName             = "name"
	fieldMesh             = "mesh"
	fieldLabels           = "labels"
	fieldSpec             = "spec"
	fieldStatus           = "status"
	fieldCreationTime     = "creationTime"
	fieldModificationTime = "modificationTime"
	fieldKRI              = "kri"
)

// Decode parses one resource document in YAML or JSON, finds its kind from
// the "type" field and returns the validated resource. Validation problems
// come back as a *validate.Error with full field paths.
func (r *Registry) Decode(data []byte) (*Resource, error) {
	obj, err := ParseObject(data)
	if err != nil {
		return nil, err
	}
	kind, _ := obj[fieldType].(string)
	if kind == "" {
		var errs validate.Errors
		errs.Add(validate.Root().Field(fieldType), "must be defined")
		return nil, errs.Err()
	}
	d, err := r.lookupKind(kind)
	if err != nil {
		return nil, err
	}
	return DecodeObject(d, obj)
}

// DecodeForPath parses a document written to d's REST path for mesh/name
// (mesh empty for global kinds). A missing name or mesh is taken from the
// path; a "type", "name" or "mesh" that disagrees with the path is a
// violation on that field.
func DecodeForPath(d *Descriptor, data []byte, mesh, name string) (*Resource, error) {
	obj, err := ParseObject(data)
	if err != nil {
		return nil, err
	}
	var errs validate.Errors
	root := validate.Root()
	if kind, present := obj[fieldType]; present && kind != d.Kind {
		errs.Addf(root.Field(fieldType), "must be %q to match the path, got %v", d.Kind, kind)
	}
	if v, present := obj[fieldName]; !present || v == "" {
		obj[fieldName] = name
	} else if v != name {
		errs.Addf(root.Field(fieldName), "name from the URL has to be the same as in body: %q in the URL, %v in the body", name, v)
	}
	if d.Scope == ScopeMesh {
		if v, present := obj[fieldMesh]; !present || v == "" {
			obj[fieldMesh] = mesh
		} else if v != mesh {
			errs.Addf(root.Field(fieldMesh), "mesh from the URL has to be the same as in body: %q in the URL, %v in the body", mesh, v)
		}
	}
	if !errs.Empty() {
		return nil, errs.Err()
	}
	return DecodeObject(d, obj)
}

func (r *Registry) lookupKind(kind string) (*Descriptor, error) {
	if d, ok := r.ByKind(kind); ok {
		return d, nil
	}
	if k, ok := r.Unsupported(kind); ok {
		return nil, fmt.Errorf("%w: %s is not supported yet by Trellis", ErrNotSupported, k)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
}

// ParseObject turns one YAML or JSON document into a generic object,
// numbers kept exact (json.Number).
func ParseObject(data []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the document must be an object with type, name and the resource's fields", ErrMalformed)
	}
	return obj, nil
}

// DecodeObject builds and validates a resource of kind d from a generic
// object (as parsed from JSON with UseNumber).
func DecodeObject(d *Descriptor, obj map[string]any) (*Resource, error) {
	var errs validate.Errors
	root := validate.Root()
	res := &Resource{Desc: d}
	res.Meta.Name = stringField(&errs, obj, fieldName)
	res.Meta.Mesh = stringField(&errs, obj, fieldMesh)
	res.Meta.Labels = labelsField(&errs, obj)
	validateMeta(&errs, d, res.Meta)

	specObj := map[string]any{}
	specPath := root
	if d.IsPolicy() {
		specPath = root.Field(fieldSpec)
		for k, v := range obj {
			switch k {
			case fieldType, fieldName, fieldMesh, fieldLabels, fieldStatus, fieldCreationTime, fieldModificationTime, fieldKRI:
			case fieldSpec:
				if v == nil {
					continue
				}
				m, ok := v.(map[string]any)
				if !ok {
					errs.Add(specPath, "must be an object")
					continue
				}
				specObj = m
			default:
				errs.Add(root.Field(k), "unknown field")
			}
		}
	} else {
		for k, v := range obj {
			switch k {
			case fieldType, fieldName, fieldMesh, fieldCreationTime, fieldModificationTime, fieldKRI:
			case fieldLabels:
			default:
				specObj[k] = v
			}
		}
	}

	spec := d.NewSpec()
	checkShape(&errs, specPath, specObj, reflect.TypeOf(spec))
	if !errs.Empty() {
		return nil, errs.Err()
	}
	js, err := json.Marshal(specObj)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(js, spec); err != nil {
		errs.Add(specPath, decodeReason(err))
		return nil, errs.Err()
	}
	if err := spec.Validate(); err != nil {
		var ve *validate.Error
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("validating %s: %w", d.Kind, err)
		}
		errs.Merge(validate.Errors{Violations: validate.Prefixed(specPath, ve).Violations})
	}
	if !errs.Empty() {
		return nil, errs.Err()
	}
	res.Spec = spec
	return res, nil
}

func decodeReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %s: cannot decode %s into %s", te.Field, te.Value, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func stringField(errs *validate.Errors, obj map[string]any, key string) string {
	v, ok := obj[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		errs.Add(validate.Root().Field(key), "must be a string")
	}
	return s
}

func labelsField(errs *validate.Errors, obj map[string]any) map[string]string {
	v, ok := obj[fieldLabels]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		errs.Add(validate.Root().Field(fieldLabels), "must be an object of string values")
		return nil
	}
	out := make(map[string]string, len(m))
	for k, lv := range m {
		s, ok := lv.(string)
		if !ok {
			errs.Add(validate.Root().Field(fieldLabels).Key(k), "must be a string")
			continue
		}
		out[k] = s
	}
	return out
}

var (
	labelNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
)

// validateMeta checks name, mesh and labels against the kind's scope.
func validateMeta(errs *validate.Errors, d *Descriptor, m Meta) {
	root := validate.Root()
	if reason := validate.Name(m.Name); reason != "" {
		errs.Add(root.Field(fieldName), reason)
	}
	switch d.Scope {
	case ScopeMesh:
		if reason := validate.Name(m.Mesh); reason != "" {
			errs.Add(root.Field(fieldMesh), reason)
		}
	case ScopeGlobal:
		if m.Mesh != "" {
			errs.Addf(root.Field(fieldMesh), "must not be set: %s is not mesh-scoped", d.Kind)
		}
	}
	for _, k := range validate.SortedKeys(m.Labels) {
		p := root.Field(fieldLabels).Key(k)
		prefix, name, hasPrefix := strings.Cut(k, "/")
		if !hasPrefix {
			name, prefix = prefix, ""
		}
		switch {
		case hasPrefix && validate.Name(prefix) != "":
			errs.Add(p, "label key prefix must be a lowercase DNS subdomain")
		case len(name) == 0 || len(name) > 63 || !labelNameRE.MatchString(name):
			errs.Add(p, "label key must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit, with an optional DNS-subdomain prefix and '/'")
		}
		if v := m.Labels[k]; len(v) > 63 || !labelValueRE.MatchString(v) {
			errs.Add(p, "label value must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
		}
	}
}

// Encode writes a resource as Kuma's REST JSON: type, mesh, name,
// creationTime, modificationTime, labels, then the spec (flat kinds) or a
// "spec" object (policies). Output is deterministic.
func Encode(res *Resource) ([]byte, error) {
	spec, err := json.Marshal(res.Spec)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", res.Desc.Kind, res.Meta.Name, err)
	}
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeJSON(&b, res.Desc.Kind)
	if res.Desc.Scope == ScopeMesh {
		b.WriteString(`,"mesh":`)
		writeJSON(&b, res.Meta.Mesh)
	}
	b.WriteString(`,"name":`)
	writeJSON(&b, res.Meta.Name)
	b.WriteString(`,"creationTime":`)
	writeJSON(&b, formatTime(res.Meta.CreationTime))
	b.WriteString(`,"modificationTime":`)
	writeJSON(&b, formatTime(res.Meta.ModificationTime))
	if len(res.Meta.Labels) > 0 || res.Desc.IsPolicy() {
		labels := res.Meta.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		b.WriteString(`,"labels":`)
		writeJSON(&b, labels)
	}
	if res.Desc.IsPolicy() {
		b.WriteString(`,"spec":`)
		b.Write(spec)
		b.WriteByte('}')
		return b.Bytes(), nil
	}
	inner := bytes.TrimSpace(spec)
	if len(inner) > 2 && inner[0] == '{' {
		b.WriteByte(',')
		b.Write(inner[1:])
		return b.Bytes(), nil
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) {
	js, _ := json.Marshal(v) // strings and string maps always marshal
	b.Write(js)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// MarshalSpec returns the canonical JSON of a spec, as stores keep it.
func MarshalSpec(s Spec) ([]byte, error) { return json.Marshal(s) }

// UnmarshalSpec decodes stored spec JSON into a new spec of kind d. Stored
// specs were validated on the way in, so this does not validate again.
func UnmarshalSpec(d *Descriptor, data []byte) (Spec, error) {
	spec := d.NewSpec()
	if len(data) == 0 {
		return spec, nil
	}
	if err := json.Unmarshal(data, spec); err != nil {
		return nil, fmt.Errorf("decoding stored %s spec: %w", d.Kind, err)
	}
	return spec, nil
}
