package k8s

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/store"
)

// toObject builds the object storing r at loc. created and modified are
// the record's times; version, when set, becomes the resourceVersion
// precondition of an update.
func (s *Store) toObject(m *mapping, loc location, r *store.Record, created, modified time.Time, version string) (*unstructured.Unstructured, error) {
	o := &unstructured.Unstructured{Object: map[string]any{}}
	o.SetAPIVersion(m.apiVersion)
	o.SetKind(m.objKind)
	o.SetName(loc.name)
	if loc.namespace != "" {
		o.SetNamespace(loc.namespace)
	}
	if version != "" {
		o.SetResourceVersion(version)
	}
	ann := map[string]string{
		annCreated:  created.Format(time.RFC3339Nano),
		annModified: modified.Format(time.RFC3339Nano),
	}
	if loc.hashed {
		ann[annName] = r.Name
		ann[annMesh] = r.Mesh
	}
	labels, extra := map[string]string{}, map[string]string{}
	for k, v := range r.Labels {
		if validLabel(k, v) {
			labels[k] = v
		} else {
			extra[k] = v
		}
	}
	if len(extra) > 0 {
		b, err := json.Marshal(extra)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		ann[annLabels] = string(b)
	}
	if r.Mesh != "" {
		switch {
		case m.topLevelMesh:
			o.Object["mesh"] = r.Mesh
		case validLabel(crd.LabelMesh, r.Mesh):
			own, hasOwn := r.Labels[crd.LabelMesh]
			switch {
			case !hasOwn:
				labels[crd.LabelMesh] = r.Mesh
				ann[annMeshLbl] = "added"
			case own != r.Mesh:
				ann[annMesh] = r.Mesh // the user's label says another mesh
			}
		default:
			ann[annMesh] = r.Mesh
		}
	}
	switch m.flavor {
	case flavorConfigMap:
		ann[annKind] = r.Kind
		ann[annName], ann[annMesh] = r.Name, r.Mesh
		labels[labelFallback] = "true"
		o.Object["data"] = map[string]any{"spec": string(r.Spec)}
	case flavorSecret:
		if err := secretData(o, m, r.Spec, ann); err != nil {
			return nil, err
		}
	default:
		spec, raw, err := specObject(r.Spec)
		if err != nil {
			return nil, err
		}
		if raw {
			ann[annSpec] = string(r.Spec)
		}
		o.Object["spec"] = spec
	}
	if len(labels) > 0 {
		o.SetLabels(labels)
	}
	o.SetAnnotations(ann)
	return o, nil
}

// specObject returns the spec as a JSON object for the "spec" field, and
// whether the exact bytes must be kept aside because Kubernetes would
// reformat them (whitespace, number forms, escapes).
func specObject(b []byte) (map[string]any, bool, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, false, fmt.Errorf("spec: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}, true, nil
	}
	norm, err := json.Marshal(obj)
	if err != nil {
		return nil, false, fmt.Errorf("spec: %w", err)
	}
	return obj, !bytes.Equal(norm, b), nil
}

// secretData fills a core Secret the way Kuma does: type
// system.kuma.io/secret (or global-secret) and the decoded bytes under
// data.value. A spec with other fields is kept whole in an annotation.
func secretData(o *unstructured.Unstructured, m *mapping, spec []byte, ann map[string]string) error {
	o.Object["type"] = m.secretType
	var s struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(spec, &s); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if b, err := base64.StdEncoding.DecodeString(s.Data); err == nil {
		o.Object["data"] = map[string]any{"value": base64.StdEncoding.EncodeToString(b)}
		if canon, _ := json.Marshal(s); bytes.Equal(canon, spec) {
			return nil
		}
	}
	ann[annSpec] = string(spec)
	return nil
}

// fromObject reads the record an object stores.
func (s *Store) fromObject(m *mapping, o *unstructured.Unstructured) (*store.Record, error) {
	ann := o.GetAnnotations()
	r := &store.Record{Kind: m.kind, Version: o.GetResourceVersion()}
	if m.flavor == flavorConfigMap {
		r.Kind = ann[annKind]
	}
	r.Name, r.Mesh = s.keyOf(m, o)
	labels := map[string]string{}
	maps.Copy(labels, o.GetLabels())
	if m.flavor == flavorConfigMap {
		delete(labels, labelFallback)
	}
	if ann[annMeshLbl] == "added" {
		delete(labels, crd.LabelMesh)
	}
	if extra := ann[annLabels]; extra != "" {
		var x map[string]string
		if err := json.Unmarshal([]byte(extra), &x); err != nil {
			return nil, fmt.Errorf("%s %s/%s: annotation %s: %w", m.objKind, o.GetNamespace(), o.GetName(), annLabels, err)
		}
		maps.Copy(labels, x)
	}
	if len(labels) > 0 {
		r.Labels = labels
	}
	spec, err := specOf(m, o, ann)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", m.objKind, o.GetNamespace(), o.GetName(), err)
	}
	r.Spec = spec
	r.CreationTime = o.GetCreationTimestamp().Time
	if t, err := time.Parse(time.RFC3339Nano, ann[annCreated]); err == nil {
		r.CreationTime = t
	}
	r.ModificationTime = r.CreationTime
	if t, err := time.Parse(time.RFC3339Nano, ann[annModified]); err == nil {
		r.ModificationTime = t
	}
	return r, nil
}

// keyOf returns the record name and mesh of an object.
func (s *Store) keyOf(m *mapping, o *unstructured.Unstructured) (name, mesh string) {
	ann := o.GetAnnotations()
	if n, ok := ann[annName]; ok {
		return n, ann[annMesh]
	}
	name = o.GetName()
	if m.flavor == flavorCRD && m.namespaced && o.GetNamespace() != s.systemNS {
		name += "." + o.GetNamespace()
	}
	if !m.meshScoped {
		return name, ""
	}
	if v, ok := ann[annMesh]; ok {
		return name, v
	}
	if v, ok := o.Object["mesh"].(string); ok && v != "" && m.topLevelMesh {
		return name, v
	}
	if v := o.GetLabels()[crd.LabelMesh]; v != "" {
		return name, v
	}
	return name, crd.DefaultMesh
}

func specOf(m *mapping, o *unstructured.Unstructured, ann map[string]string) ([]byte, error) {
	switch m.flavor {
	case flavorConfigMap:
		v, _, _ := unstructured.NestedString(o.Object, "data", "spec")
		return []byte(v), nil
	case flavorSecret:
		if raw, ok := ann[annSpec]; ok {
			return []byte(raw), nil
		}
		v, _, _ := unstructured.NestedString(o.Object, "data", "value")
		return json.Marshal(struct {
			Data string `json:"data"`
		}{v})
	}
	spec, ok := o.Object["spec"].(map[string]any)
	if !ok {
		spec = map[string]any{}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	// The exact bytes written through the store win while they still say
	// what the object says (kubectl edits make them stale).
	if raw, ok := ann[annSpec]; ok {
		var v any
		if json.Unmarshal([]byte(raw), &v) == nil {
			if obj, isObj := v.(map[string]any); isObj {
				if norm, err := json.Marshal(obj); err == nil && bytes.Equal(norm, b) {
					return []byte(raw), nil
				}
			} else if len(spec) == 0 {
				return []byte(raw), nil
			}
		}
	}
	return b, nil
}
