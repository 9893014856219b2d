package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// DataplaneName is the name of a Pod's Dataplane in the resource model:
// "<pod>.<namespace>", Kuma's name for namespaced Kubernetes objects (the
// custom resource itself is named after the Pod, in its namespace).
func DataplaneName(namespace, pod string) string { return pod + "." + namespace }

// PodReconciler keeps one Dataplane per injected Pod that has an IP and a
// selecting Service, and removes it when the Pod goes (explicitly, and
// through the owner reference it puts on the custom resource).
type PodReconciler struct {
	// Client reads Pods, Services and Namespaces (the manager's cache).
	Client client.Client
	// Writer patches the Dataplane custom resource's owner reference; the
	// manager's client.
	Writer client.Client
	// Resources writes the Dataplanes through the store.
	Resources *manager.Manager
	Log       *slog.Logger
}

// SetupWithManager registers the controller: Pods, and Services mapped to
// the Pods of their namespace they select.
func (r *PodReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("pod-to-dataplane").
		// several control planes in one process (tests) each have theirs
		WithOptions(controller.Options{SkipNameValidation: ptr(true)}).
		For(&corev1.Pod{}).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.podsOfService)).
		Complete(r)
}

// podsOfService maps a Service to the injected Pods of its namespace (all of
// them: a changed selector may have dropped some).
func (r *PodReconciler) podsOfService(ctx context.Context, obj client.Object) []reconcile.Request {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(obj.GetNamespace())); err != nil {
		r.Log.Warn("listing the Pods of a Service's namespace", "namespace", obj.GetNamespace(), "err", err)
		return nil
	}
	var out []reconcile.Request
	for _, p := range pods.Items {
		if p.Annotations[annotations.SidecarInjected] == "true" {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
	}
	return out
}

// Reconcile brings the Dataplane of one Pod in line with the Pod.
func (r *PodReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	name := DataplaneName(req.Namespace, req.Name)
	var pod corev1.Pod
	err := r.Client.Get(ctx, req.NamespacedName, &pod)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, r.deleteExcept(ctx, name, "")
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if pod.DeletionTimestamp != nil || pod.Annotations[annotations.SidecarInjected] != "true" ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return reconcile.Result{}, r.deleteExcept(ctx, name, "")
	}
	if pod.Status.PodIP == "" {
		return reconcile.Result{}, nil // the Pod's IP update triggers us again
	}
	var svcs corev1.ServiceList
	if err := r.Client.List(ctx, &svcs, client.InNamespace(pod.Namespace)); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing Services: %w", err)
	}
	ptrs := make([]*corev1.Service, len(svcs.Items))
	for i := range svcs.Items {
		ptrs[i] = &svcs.Items[i]
	}
	var ns corev1.Namespace
	if err := r.Client.Get(ctx, types.NamespacedName{Name: pod.Namespace}, &ns); err != nil {
		return reconcile.Result{}, fmt.Errorf("reading namespace %s: %w", pod.Namespace, err)
	}
	meshName := annotations.MeshOf(pod.Labels, pod.Annotations, ns.Labels, ns.Annotations)
	spec, err := DataplaneFor(&pod, ptrs)
	if errors.Is(err, ErrNoInbound) {
		r.Log.Info("no Dataplane for the Pod: no Service selects it", "pod", req.String())
		return reconcile.Result{}, r.deleteExcept(ctx, name, "")
	}
	if err != nil {
		r.Log.Warn("cannot build the Pod's Dataplane", "pod", req.String(), "err", err)
		return reconcile.Result{}, nil // a Pod change triggers us again
	}
	if err := r.deleteExcept(ctx, name, meshName); err != nil {
		return reconcile.Result{}, err
	}
	wrote, err := r.apply(ctx, meshName, name, spec)
	if err != nil || !wrote {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.own(ctx, &pod)
}

// apply writes the Dataplane unless the stored one is already equal, and
// reports whether it wrote.
func (r *PodReconciler) apply(ctx context.Context, meshName, name string, spec resource.Spec) (bool, error) {
	d, _ := r.Resources.Registry().ByKind(kinds.Dataplane)
	if cur, err := r.Resources.Get(ctx, d, meshName, name); err == nil {
		a, _ := json.Marshal(cur.Spec)
		b, _ := json.Marshal(spec)
		if bytes.Equal(a, b) {
			return false, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("reading Dataplane %s: %w", name, err)
	}
	res := &resource.Resource{Desc: d, Meta: resource.Meta{Mesh: meshName, Name: name}, Spec: spec}
	created, err := r.Resources.Apply(ctx, res)
	if err != nil {
		return false, fmt.Errorf("writing Dataplane %s in mesh %s: %w", name, meshName, err)
	}
	r.Log.Info("dataplane written", "mesh", meshName, "name", name, "created", created)
	return true, nil
}

// deleteExcept removes the Dataplanes named name in every mesh but keep.
func (r *PodReconciler) deleteExcept(ctx context.Context, name, keep string) error {
	d, _ := r.Resources.Registry().ByKind(kinds.Dataplane)
	list, _, err := r.Resources.List(ctx, d, manager.ListOptions{NameContains: name})
	if err != nil {
		return fmt.Errorf("listing Dataplanes named %s: %w", name, err)
	}
	for _, res := range list {
		if res.Meta.Name != name || res.Meta.Mesh == keep {
			continue
		}
		if err := r.Resources.Delete(ctx, d, res.Meta.Mesh, name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleting Dataplane %s: %w", name, err)
		}
		r.Log.Info("dataplane deleted", "mesh", res.Meta.Mesh, "name", name)
	}
	return nil
}

// own puts the Pod as owner reference on the Dataplane custom resource, so
// that the garbage collector removes it with the Pod even while no control
// plane runs. A missing custom resource is not an error (another store).
func (r *PodReconciler) own(ctx context.Context, pod *corev1.Pod) error {
	if r.Writer == nil {
		return nil
	}
	dp := &unstructured.Unstructured{}
	dp.SetAPIVersion("kuma.io/v1alpha1")
	dp.SetKind("Dataplane")
	dp.SetNamespace(pod.Namespace)
	dp.SetName(pod.Name)
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
	patch := map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{ref}}}
	body, _ := json.Marshal(patch)
	if err := r.Writer.Patch(ctx, dp, client.RawPatch(types.MergePatchType, body)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("setting the Dataplane's owner reference: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
