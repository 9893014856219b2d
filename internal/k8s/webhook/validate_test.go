package webhook

import (
	"context"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

func request(kind, raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Group: "kuma.io", Version: "v1alpha1", Kind: kind},
		Object: runtime.RawExtension{Raw: []byte(raw)}}}
}

func TestValidatorSameTextsAsTheRESTAPI(t *testing.T) {
	v := &Validator{Registry: kinds.Registry()}
	cases := []struct {
		kind, cr, universal, field string
	}{
		{"MeshTimeout",
			`{"apiVersion":"kuma.io/v1alpha1","kind":"MeshTimeout","metadata":{"name":"t","namespace":"kuma-system","labels":{"kuma.io/mesh":"default"}},` +
				`"spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"soon"}}]}}`,
			"type: MeshTimeout\nname: t\nmesh: default\nspec:\n  targetRef: {kind: Mesh}\n  to:\n  - targetRef: {kind: Mesh}\n    default: {connectionTimeout: soon}\n",
			"spec.to[0].default.connectionTimeout"},
		{"Dataplane",
			`{"apiVersion":"kuma.io/v1alpha1","kind":"Dataplane","mesh":"default","metadata":{"name":"d","namespace":"shop"},` +
				`"spec":{"networking":{"address":"not an ip","inbound":[{"port":80,"tags":{"kuma.io/service":"web"}}]}}}`,
			"type: Dataplane\nname: d\nmesh: default\nnetworking:\n  address: not an ip\n  inbound:\n  - port: 80\n    tags: {kuma.io/service: web}\n",
			"spec.networking.address"},
	}
	for _, c := range cases {
		resp := v.Handle(context.Background(), request(c.kind, c.cr))
		if resp.Allowed {
			t.Fatalf("%s: invalid object allowed", c.kind)
		}
		_, restErr := kinds.Registry().Decode([]byte(c.universal))
		if restErr == nil {
			t.Fatalf("%s: the REST API accepts the Universal form", c.kind)
		}
		msg := resp.Result.Message
		if !strings.Contains(msg, c.field+": ") {
			t.Errorf("%s: denial %q does not name %s", c.kind, msg, c.field)
		}
		// the reason is the REST API's text
		_, reason, _ := strings.Cut(restErr.Error(), ": ")
		if !strings.Contains(msg, reason) {
			t.Errorf("%s: denial %q lacks the REST API's reason %q", c.kind, msg, reason)
		}
		if len(resp.Result.Details.Causes) == 0 || resp.Result.Details.Causes[0].Field != c.field {
			t.Errorf("%s: causes %+v", c.kind, resp.Result.Details)
		}
	}
	ok := v.Handle(context.Background(), request("MeshTimeout",
		`{"kind":"MeshTimeout","metadata":{"name":"t","namespace":"kuma-system"},"spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"2s"}}]}}`))
	if !ok.Allowed {
		t.Fatalf("valid policy refused: %+v", ok.Result)
	}
}
