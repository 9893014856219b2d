// Package k8s is the Kubernetes store: it keeps Trellis resources in the
// Kubernetes API server as Kuma keeps them, so Kuma's Kubernetes manifests
// and Trellis's REST API see the same objects.
//
//   - Registry kinds are kuma.io/v1alpha1 custom resources (internal/k8s/crd):
//     Mesh, MeshGateway and Zone cluster-scoped; Dataplane, ZoneIngress,
//     ZoneEgress and the policies namespaced. A mesh-scoped policy's mesh is
//     its kuma.io/mesh label (default "default"); Dataplane and MeshGateway
//     carry a top-level "mesh" field, as in Kuma.
//   - Secret and GlobalSecret are core v1 Secrets of type
//     system.kuma.io/secret / system.kuma.io/global-secret in the system
//     namespace, with the bytes under data.value, as in Kuma.
//   - Kinds the registry does not know are ConfigMaps in the system
//     namespace (the store interface takes any kind).
//
// Names: a namespaced object "web" in namespace "team-a" is the record
// "web.team-a" (Kuma's REST API form); one in the system namespace is just
// "web". A record name that is not a valid Kubernetes name, or whose plain
// name another mesh already uses, is stored under a derived name
// ("trellis-<hash>") with its real name and mesh in annotations.
//
// Versions are the objects' resourceVersions, so updates are optimistic
// (Conflict → store.ErrConflict); Watch turns the API server's watches into
// store events. There is no garbage collector in the way: deleting a Mesh
// deletes its records itself.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// DefaultSystemNamespace is Kuma's: where the control plane, its secrets and
// the records without a namespace of their own live.
const DefaultSystemNamespace = "kuma-system"

// Options configure a Store.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// SystemNamespace defaults to kuma-system
	// (TRELLIS_STORE_KUBERNETES_SYSTEM_NAMESPACE); it is created if missing.
	SystemNamespace string
	// Registry defaults to kinds.Registry().
	Registry *resource.Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store keeps records in the Kubernetes API server.
type Store struct {
	client   dynamic.Interface
	systemNS string
	mappings map[string]*mapping
	log      *slog.Logger

	mu     sync.Mutex
	closed bool
}

var _ store.Store = (*Store)(nil)

// New connects to the API server and makes sure the system namespace exists.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Config == nil {
		return nil, errors.New("kubernetes store: no API server config")
	}
	if o.SystemNamespace == "" {
		o.SystemNamespace = DefaultSystemNamespace
	}
	if o.Registry == nil {
		o.Registry = kinds.Registry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c, err := dynamic.NewForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	s := &Store{client: c, systemNS: o.SystemNamespace, mappings: newMappings(o.Registry), log: o.Logger}
	if err := s.ensureNamespace(ctx, s.systemNS); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) ensureNamespace(ctx context.Context, ns string) error {
	nsRes := s.client.Resource(gvrNamespaces)
	if _, err := nsRes.Get(ctx, ns, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("kubernetes store: namespace %s: %w", ns, err)
	}
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	o.SetName(ns)
	if _, err := nsRes.Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes store: creating namespace %s: %w", ns, err)
	}
	return nil
}

// SystemNamespace returns the namespace the store uses for records without
// one of their own.
func (s *Store) SystemNamespace() string { return s.systemNS }

func (s *Store) mappingFor(kind string) *mapping {
	if m, ok := s.mappings[kind]; ok {
		return m
	}
	return fallbackMapping(kind)
}

func (s *Store) res(m *mapping, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return s.client.Resource(m.gvr)
	}
	return s.client.Resource(m.gvr).Namespace(ns)
}

// wrap turns an API error into an error naming the object, with a hint
// when the CRDs are missing.
func wrap(op string, m *mapping, loc location, err error) error {
	if apierrors.IsNotFound(err) && m.flavor == flavorCRD {
		var st apierrors.APIStatus
		if errors.As(err, &st) && st.Status().Details != nil && st.Status().Details.Name == "" {
			return fmt.Errorf("kubernetes store: %s %s %s: %w (are the Trellis CRDs installed? trellisctl install crds)", op, m.gvr.Resource, loc.name, err)
		}
	}
	return fmt.Errorf("kubernetes store: %s %s %s/%s: %w", op, m.gvr.Resource, loc.namespace, loc.name, err)
}

// find returns the object storing key k and where it is.
func (s *Store) find(ctx context.Context, k store.Key) (*mapping, location, *unstructured.Unstructured, error) {
	m := s.mappingFor(k.Kind)
	for _, loc := range m.candidates(s.systemNS, k.Mesh, k.Name) {
		o, err := s.res(m, loc.namespace).Get(ctx, loc.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, location{}, nil, wrap("get", m, loc, err)
		}
		if !s.holds(m, o, k) {
			continue
		}
		return m, loc, o, nil
	}
	return m, location{}, nil, fmt.Errorf("%s %s/%s: %w", k.Kind, k.Mesh, k.Name, store.ErrNotFound)
}

// holds reports whether object o stores key k.
func (s *Store) holds(m *mapping, o *unstructured.Unstructured, k store.Key) bool {
	if m.flavor == flavorConfigMap && o.GetAnnotations()[annKind] != k.Kind {
		return false
	}
	if m.flavor == flavorSecret && o.Object["type"] != m.secretType {
		return false
	}
	name, mesh := s.keyOf(m, o)
	return name == k.Name && mesh == k.Mesh
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, k store.Key) (*store.Record, error) {
	m, _, o, err := s.find(ctx, k)
	if err != nil {
		return nil, err
	}
	return s.fromObject(m, o)
}

// now is the time of a write, as the annotations keep it.
func now() time.Time { return time.Now().UTC().Round(0) }

// Create stores a new record.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	if r.Mesh != "" && r.Kind != store.MeshKind {
		if err := s.meshExists(ctx, r.Mesh); err != nil {
			return err
		}
	}
	if _, _, _, err := s.find(ctx, r.Key()); err == nil {
		return fmt.Errorf("%s %s/%s: %w", r.Kind, r.Mesh, r.Name, store.ErrAlreadyExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m := s.mappingFor(r.Kind)
	t := now()
	var created *unstructured.Unstructured
	for _, loc := range m.candidates(s.systemNS, r.Mesh, r.Name) {
		if loc.namespace != "" && loc.namespace != s.systemNS && !s.namespaceExists(ctx, loc.namespace) {
			continue // "a.b" with no namespace b: a plain Universal name
		}
		o, err := s.toObject(m, loc, r, t, t, "")
		if err != nil {
			return fmt.Errorf("kubernetes store: %s %s/%s: %w", r.Kind, r.Mesh, r.Name, err)
		}
		got, err := s.res(m, loc.namespace).Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			if existing, gerr := s.res(m, loc.namespace).Get(ctx, loc.name, metav1.GetOptions{}); gerr == nil && s.holds(m, existing, r.Key()) {
				return fmt.Errorf("%s %s/%s: %w", r.Kind, r.Mesh, r.Name, store.ErrAlreadyExists)
			}
			continue // the plain name belongs to another mesh
		}
		if err != nil {
			return wrap("create", m, loc, err)
		}
		created = got
		break
	}
	if created == nil {
		return fmt.Errorf("%s %s/%s: %w", r.Kind, r.Mesh, r.Name, store.ErrAlreadyExists)
	}
	// A Mesh deleted while this record was being written would not see it
	// in its cascade: check again, and undo.
	if r.Mesh != "" && r.Kind != store.MeshKind {
		if err := s.meshExists(ctx, r.Mesh); err != nil {
			_ = s.res(m, created.GetNamespace()).Delete(ctx, created.GetName(), metav1.DeleteOptions{})
			return err
		}
	}
	r.Version, r.CreationTime, r.ModificationTime = created.GetResourceVersion(), t, t
	return nil
}

func (s *Store) namespaceExists(ctx context.Context, ns string) bool {
	_, err := s.client.Resource(gvrNamespaces).Get(ctx, ns, metav1.GetOptions{})
	return err == nil
}

func (s *Store) meshExists(ctx context.Context, mesh string) error {
	_, _, _, err := s.find(ctx, store.Key{Kind: store.MeshKind, Name: mesh})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mesh %q: %w", mesh, store.ErrMeshNotFound)
	}
	return err
}

// Update replaces a record whose stored version is r.Version.
func (s *Store) Update(ctx context.Context, r *store.Record) error {
	m, loc, o, err := s.find(ctx, r.Key())
	if err != nil {
		return err
	}
	if r.Version == "" || r.Version != o.GetResourceVersion() {
		return fmt.Errorf("%s %s/%s version %q: %w", r.Kind, r.Mesh, r.Name, r.Version, store.ErrConflict)
	}
	old, err := s.fromObject(m, o)
	if err != nil {
		return err
	}
	t := now()
	if !t.After(old.ModificationTime) {
		t = old.ModificationTime.Add(time.Nanosecond)
	}
	obj, err := s.toObject(m, loc, r, old.CreationTime, t, r.Version)
	if err != nil {
		return fmt.Errorf("kubernetes store: %s %s/%s: %w", r.Kind, r.Mesh, r.Name, err)
	}
	got, err := s.res(m, loc.namespace).Update(ctx, obj, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s %s/%s: %w", r.Kind, r.Mesh, r.Name, store.ErrConflict)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s/%s: %w", r.Kind, r.Mesh, r.Name, store.ErrNotFound)
	case err != nil:
		return wrap("update", m, loc, err)
	}
	r.Version, r.CreationTime, r.ModificationTime = got.GetResourceVersion(), old.CreationTime, t
	return nil
}

// Delete removes a record; deleting a Mesh removes its records too.
func (s *Store) Delete(ctx context.Context, k store.Key) error {
	m, loc, o, err := s.find(ctx, k)
	if err != nil {
		return err
	}
	uid := o.GetUID()
	err = s.res(m, loc.namespace).Delete(ctx, loc.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return fmt.Errorf("%s %s/%s: %w", k.Kind, k.Mesh, k.Name, store.ErrNotFound)
	}
	if err != nil {
		return wrap("delete", m, loc, err)
	}
	if k.Kind == store.MeshKind {
		return s.deleteMeshRecords(ctx, k.Name)
	}
	return nil
}

// deleteMeshRecords deletes every record of a deleted mesh. Records created
// concurrently check the mesh again after writing (see Create), so none
// survives.
func (s *Store) deleteMeshRecords(ctx context.Context, mesh string) error {
	for _, m := range s.allMappings() {
		if !m.meshScoped {
			continue
		}
		objs, err := s.listObjects(ctx, m)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if _, om := s.keyOf(m, &o); om != mesh {
				continue
			}
			err := s.res(m, o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("kubernetes store: deleting %s %s/%s of mesh %s: %w", m.gvr.Resource, o.GetNamespace(), o.GetName(), mesh, err)
			}
		}
	}
	return nil
}

// allMappings returns one mapping per stored object type: the registry's
// and the ConfigMap fallback (which holds every unknown kind).
func (s *Store) allMappings() []*mapping {
	out := make([]*mapping, 0, len(s.mappings)+1)
	for _, m := range s.mappings {
		out = append(out, m)
	}
	return append(out, fallbackMapping(""))
}

// listObjects lists the objects of a mapping (for the fallback: of every
// unknown kind).
func (s *Store) listObjects(ctx context.Context, m *mapping) ([]unstructured.Unstructured, error) {
	var ri dynamic.ResourceInterface
	opts := metav1.ListOptions{}
	switch m.flavor {
	case flavorCRD:
		ri = s.client.Resource(m.gvr) // all namespaces, or cluster-scoped
	case flavorSecret:
		ri = s.res(m, s.systemNS)
		opts.FieldSelector = "type=" + m.secretType
	case flavorConfigMap:
		ri = s.res(m, s.systemNS)
		opts.LabelSelector = labelFallback + "=true"
	}
	l, err := ri.List(ctx, opts)
	if err != nil {
		return nil, wrap("list", m, location{namespace: s.systemNS}, err)
	}
	return l.Items, nil
}

// List returns one page of records of a kind.
func (s *Store) List(ctx context.Context, q store.Query) (*store.Page, error) {
	m := s.mappingFor(q.Kind)
	objs, err := s.listObjects(ctx, m)
	if err != nil {
		return nil, err
	}
	var all []*store.Record
	for i := range objs {
		r, err := s.fromObject(m, &objs[i])
		if err != nil {
			s.log.Warn("kubernetes store: skipping an object it cannot read", "err", err)
			continue
		}
		if q.Matches(r) {
			all = append(all, r)
		}
	}
	store.SortRecords(all)
	return q.Paginate(all), nil
}

// Close releases nothing: the client holds no connection of its own.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
