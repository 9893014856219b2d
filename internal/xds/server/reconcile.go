package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// xDS type URLs.
const (
	listenerType = resourcev3.ListenerType
	clusterType  = resourcev3.ClusterType
	routeType    = resourcev3.RouteType
	endpointType = resourcev3.EndpointType
	secretType   = resourcev3.SecretType
)

// maxDebounce caps how long a stream of changes can delay a recompute.
const maxDebounce = 500 * time.Millisecond

// reconciler recomputes the xDS of this instance's connected proxies when
// the store changes: a change marks its mesh dirty, a short debounce
// batches bursts, and a proxy is pushed only when its output changed.
type reconciler struct {
	s *Server
	// online remembers each proxy's last seen online status, so that insight
	// writes (ACK counters) recompute nothing unless a proxy came or went.
	online map[proxyKey]bool
	// rotation schedules the recomputes that renew workload certificates.
	rotation *rotation
}

func newReconciler(s *Server) *reconciler {
	return &reconciler{s: s, online: map[proxyKey]bool{}, rotation: newRotation()}
}

// onlineChanged reports whether an insight change flipped a proxy between
// online and offline (which adds or removes its endpoints).
func (r *reconciler) onlineChanged(ctx context.Context, ev store.Event) bool {
	key := proxyKey{Mesh: ev.Mesh, Name: ev.Name}
	now := false
	if ev.Op != store.OpDelete {
		in, err := insights.Get(ctx, r.s.st, ev.Mesh, ev.Name)
		if err != nil {
			return true
		}
		now = in.Online()
	}
	was, seen := r.online[key]
	r.online[key] = now
	if ev.Op == store.OpDelete {
		delete(r.online, key)
	}
	return !seen || was != now
}

// relevant reports whether a change of kind can change proxies' xDS.
func relevant(kind string) bool {
	d, ok := kinds.Registry().ByKind(kind)
	return ok && (d.Scope == "Mesh" || kind == kinds.Mesh)
}

func (r *reconciler) run(ctx context.Context) {
	for ctx.Err() == nil {
		events, err := r.s.st.Watch(ctx)
		if err != nil {
			r.s.log.Error("watching the store", "err", err)
			time.Sleep(time.Second)
			continue
		}
		r.ensureAllCAs(ctx) // meshes created or changed before the watch
		r.recomputeAll(ctx) // catch up with what happened before the watch
		r.loop(ctx, events)
	}
}

// loop consumes events until the channel closes (ctx ended or the watch
// fell behind, in which case run re-watches and recomputes everything).
// Besides store changes, it recomputes meshes whose workload certificates
// are due to be reissued, on one timer.
func (r *reconciler) loop(ctx context.Context, events <-chan store.Event) {
	var batch debouncer
	// newCA holds meshes whose Mesh changed: their builtin CAs are created
	// even when no proxy of the mesh is connected here.
	newCA := map[string]bool{}
	renew := time.NewTimer(time.Hour)
	defer renew.Stop()
	r.rotation.arm(renew)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == insights.Kind {
				if !r.onlineChanged(ctx, ev) {
					continue
				}
			} else if !relevant(ev.Kind) {
				continue
			}
			m := ev.Mesh
			if ev.Kind == kinds.Mesh {
				m = ev.Name
				if ev.Op == store.OpDelete {
					r.s.ca.Forget(m)
				} else {
					newCA[m] = true
				}
			}
			batch.mark(m, r.s.cfg.Debounce)
		case <-batch.timer:
			for _, m := range batch.take() {
				if newCA[m] {
					delete(newCA, m)
					r.ensureCA(ctx, m)
				}
				if err := r.recomputeMesh(ctx, m); err != nil && ctx.Err() == nil {
					r.s.log.Error("recomputing proxies", "mesh", m, "err", err)
				}
			}
		case <-r.rotation.wake:
			r.rotation.arm(renew)
		case <-renew.C:
			for _, m := range r.rotation.due(time.Now()) {
				batch.mark(m, r.s.cfg.Debounce)
			}
			r.rotation.arm(renew)
		case <-ctx.Done():
			return
		}
	}
}

// debouncer batches dirty meshes: the batch is due debounce after the last
// change, and at most maxDebounce after the first.
type debouncer struct {
	dirty    map[string]bool
	timer    <-chan time.Time
	deadline time.Time
}

func (d *debouncer) mark(mesh string, debounce time.Duration) {
	if d.dirty == nil {
		d.dirty = map[string]bool{}
	}
	d.dirty[mesh] = true
	if d.timer == nil {
		d.deadline = time.Now().Add(maxDebounce)
	}
	d.timer = time.After(min(debounce, time.Until(d.deadline)))
}

// take returns the dirty meshes, sorted, and starts a new batch.
func (d *debouncer) take() []string {
	out := sortedKeys(d.dirty)
	d.dirty, d.timer = nil, nil
	return out
}

// ensureAllCAs creates the missing builtin CAs of every mesh.
func (r *reconciler) ensureAllCAs(ctx context.Context) {
	meshes, _, err := r.s.mgr.List(ctx, r.s.meshDesc(), manager.ListOptions{})
	if err != nil {
		r.s.log.Error("listing meshes", "err", err)
		return
	}
	for _, m := range meshes {
		if err := r.s.ca.EnsureBuiltin(ctx, m.Meta.Name, m.Spec.(*mesh.Mesh)); err != nil && ctx.Err() == nil {
			r.s.log.Error("creating the mesh's CA", "mesh", m.Meta.Name, "err", err)
		}
	}
}

// ensureCA creates the missing builtin CAs of a mesh.
func (r *reconciler) ensureCA(ctx context.Context, meshName string) {
	m, err := r.s.mgr.Get(ctx, r.s.meshDesc(), "", meshName)
	if err != nil {
		return // deleted since
	}
	if err := r.s.ca.EnsureBuiltin(ctx, meshName, m.Spec.(*mesh.Mesh)); err != nil && ctx.Err() == nil {
		r.s.log.Error("creating the mesh's CA", "mesh", meshName, "err", err)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *reconciler) recomputeAll(ctx context.Context) {
	r.s.mu.Lock()
	meshes := map[string]bool{}
	for k := range r.s.proxies {
		meshes[k.Mesh] = true
	}
	r.s.mu.Unlock()
	for _, m := range sortedKeys(meshes) {
		if err := r.recomputeMesh(ctx, m); err != nil && ctx.Err() == nil {
			r.s.log.Error("recomputing proxies", "mesh", m, "err", err)
		}
	}
}

// connectedIn returns this instance's proxies of a mesh.
func (r *reconciler) connectedIn(meshName string) []*proxyState {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []*proxyState
	for k, ps := range r.s.proxies {
		if k.Mesh == meshName {
			out = append(out, ps)
		}
	}
	return out
}

func (r *reconciler) recomputeMesh(ctx context.Context, meshName string) error {
	proxies := r.connectedIn(meshName)
	if len(proxies) == 0 {
		r.rotation.set(meshName, time.Time{})
		return nil
	}
	ms, err := loadMesh(ctx, r.s.mgr, r.s.ca, meshName)
	if err != nil {
		r.rotation.set(meshName, time.Now().Add(retryAfterError))
		return err
	}
	var earliest time.Time
	for _, ps := range proxies {
		renew, err := r.push(ctx, ms, ps)
		if err != nil {
			r.s.log.Warn("building a proxy's config", "proxy", ps.info.key.String(), "err", err)
			continue
		}
		earliest = earlier(earliest, renew)
	}
	r.rotation.set(meshName, earliest)
	return nil
}

// refreshProxy computes and sets one proxy's config (on connect).
func (r *reconciler) refreshProxy(ctx context.Context, ps *proxyState) error {
	ms, err := loadMesh(ctx, r.s.mgr, r.s.ca, ps.info.key.Mesh)
	if err != nil {
		return err
	}
	renew, err := r.push(ctx, ms, ps)
	if err != nil {
		return err
	}
	r.rotation.note(ps.info.key.Mesh, renew)
	return nil
}

// push builds a proxy's resources and sets them in the cache when a type's
// content changed. Versions are content hashes, so unchanged types are not
// resent. It returns when one of the proxy's certificates is due to be
// reissued (zero without mTLS).
func (r *reconciler) push(ctx context.Context, ms *meshState, ps *proxyState) (time.Time, error) {
	res, renew, err := generate(ms, ps.info.key.Name, ps.info.proxyless)
	if err != nil {
		return time.Time{}, err
	}
	if r.s.isCorrupt(ps.info.key) {
		res = corruptResources(res)
	}
	byType := res.ByType()
	snap := &cachev3.Snapshot{}
	versions := map[string]string{}
	for typ, items := range byType {
		v, err := hashResources(items)
		if err != nil {
			return time.Time{}, err
		}
		versions[typ] = v
		snap.Resources[cachev3.GetResponseType(typ)] = cachev3.NewResources(v, items)
	}
	r.s.mu.Lock()
	same := equalVersions(ps.versions, versions)
	if !same {
		ps.versions = versions
	}
	r.s.mu.Unlock()
	if same {
		return renew, nil
	}
	if err := r.s.cache.SetSnapshot(ctx, ps.info.nodeID, snap); err != nil {
		return time.Time{}, fmt.Errorf("setting the snapshot of %s: %w", ps.info.key, err)
	}
	r.s.log.Debug("pushed config", "proxy", ps.info.key.String(), "versions", versions)
	return renew, nil
}

func equalVersions(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// hashResources returns a short content hash of a type's resources.
func hashResources(items []types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, it := range items {
		b, err := opts.Marshal(it)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s:%d:", cachev3.GetResourceName(it), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
