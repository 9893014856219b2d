package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
	"github.com/trellis-mesh/trellis/internal/k8s/injector"
)

// Injector is the mutating webhook that adds the sidecar to Pods.
type Injector struct {
	Config injector.Config
	// Reader reads the Pod's Namespace (straight from the API server: a
	// namespace labelled just now must count).
	Reader client.Reader
	Log    *slog.Logger
}

var _ admission.Handler = (*Injector)(nil)

// Handle injects one Pod on CREATE.
func (i *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" {
		return admission.Allowed("")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the Pod: %w", err))
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	var ns corev1.Namespace
	if err := i.Reader.Get(ctx, types.NamespacedName{Name: pod.Namespace}, &ns); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading namespace %s: %w", pod.Namespace, err))
	}
	if !injector.Wanted(&pod, &ns) {
		return admission.Allowed("injection not wanted")
	}
	mesh := annotations.MeshOf(pod.Labels, pod.Annotations, ns.Labels, ns.Annotations)
	if err := i.Config.Inject(&pod, mesh); err != nil {
		return admission.Denied(fmt.Sprintf("cannot inject the sidecar: %v", err))
	}
	out, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	i.Log.Info("sidecar injected", "namespace", pod.Namespace, "pod", podName(&pod), "mesh", mesh)
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
