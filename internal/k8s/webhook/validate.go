// Package webhook serves the admission webhooks the Kubernetes API server
// calls: validation of kuma.io custom resources with the REST API's codec
// (same checks, same texts, the field paths of the custom resource) and
// the sidecar injector for Pods.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Paths the API server calls (the webhook configurations name them).
const (
	ValidatePath = "/validate-kuma-io-v1alpha1"
	InjectPath   = "/inject-sidecar"
)

// Validator checks kuma.io custom resources as the REST API checks the
// same resource in Universal form.
type Validator struct {
	Registry *resource.Registry
}

var _ admission.Handler = (*Validator)(nil)

// crObject is the part of a kuma.io custom resource the validator reads.
type crObject struct {
	Kind     string            `json:"kind"`
	Metadata metav1.ObjectMeta `json:"metadata"`
	// Mesh is the top-level mesh of Dataplane and MeshGateway objects.
	Mesh string         `json:"mesh"`
	Spec map[string]any `json:"spec"`
}

// Handle validates one CREATE or UPDATE.
func (v *Validator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	d, ok := v.Registry.ByKind(req.Kind.Kind)
	if !ok {
		return admission.Allowed("not a Trellis kind")
	}
	obj, err := universalObject(d, req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if _, err := resource.DecodeObject(d, obj); err != nil {
		return denial(d, err)
	}
	return admission.Allowed("")
}

// universalObject turns a custom resource into the Universal document the
// REST API decodes: type, name, mesh and labels next to the spec (flat
// kinds) or with a spec field (policies).
func universalObject(d *resource.Descriptor, raw []byte) (map[string]any, error) {
	var cr crObject
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&cr); err != nil {
		return nil, fmt.Errorf("decoding the %s object: %w", d.Kind, err)
	}
	obj := map[string]any{"type": d.Kind, "name": cr.Metadata.Name}
	if d.Scope == resource.ScopeMesh {
		mesh := cr.Mesh
		if mesh == "" {
			mesh = cr.Metadata.Labels[annotations.Mesh]
		}
		if mesh == "" {
			mesh = annotations.DefaultMesh
		}
		obj["mesh"] = mesh
	}
	if d.IsPolicy() {
		if len(cr.Metadata.Labels) > 0 {
			labels := map[string]any{}
			for k, v := range cr.Metadata.Labels {
				labels[k] = v
			}
			obj["labels"] = labels
		}
		obj["spec"] = cr.Spec
		if cr.Spec == nil {
			obj["spec"] = map[string]any{}
		}
		return obj, nil
	}
	for k, v := range cr.Spec {
		switch k {
		case "type", "name", "mesh", "labels", "creationTime", "modificationTime", "kri":
			// not spec fields in Universal form; the codec would misread them
			return nil, fmt.Errorf("spec.%s: unknown field", k)
		}
		obj[k] = v
	}
	return obj, nil
}

// denial refuses the request with the codec's violations, their fields as
// paths in the custom resource (flat kinds' fields sit under spec there).
func denial(d *resource.Descriptor, err error) admission.Response {
	var ve *validate.Error
	if !errors.As(err, &ve) {
		return admission.Denied(err.Error())
	}
	var parts []string
	var causes []metav1.StatusCause
	for _, viol := range ve.Violations {
		field := crField(d, viol.Field)
		parts = append(parts, field+": "+viol.Reason)
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: field, Message: viol.Reason})
	}
	resp := admission.Denied("Resource is not valid: " + strings.Join(parts, "; "))
	resp.Result.Code = http.StatusUnprocessableEntity
	resp.Result.Reason = metav1.StatusReasonInvalid
	resp.Result.Details = &metav1.StatusDetails{Kind: d.Kind, Causes: causes}
	return resp
}

// crField maps a field path of the Universal document to the custom
// resource's: name → metadata.name, labels → metadata.labels, a policy's
// mesh → its kuma.io/mesh label, a flat kind's fields → under spec.
func crField(d *resource.Descriptor, field string) string {
	head, rest := field, ""
	if i := strings.IndexAny(field, ".["); i >= 0 {
		head, rest = field[:i], field[i:]
	}
	switch head {
	case "name":
		return "metadata.name" + rest
	case "labels":
		return "metadata.labels" + rest
	case "type":
		return "kind" + rest
	case "mesh":
		if d.IsPolicy() {
			return `metadata.labels["kuma.io/mesh"]`
		}
		return field
	case "spec":
		if d.IsPolicy() {
			return field
		}
	case "":
		if !d.IsPolicy() {
			return "spec" + rest
		}
		return field
	}
	if d.IsPolicy() {
		return field
	}
	return "spec." + field
}
