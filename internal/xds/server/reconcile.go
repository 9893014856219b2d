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
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// xDS type URLs.
const (
	listenerType = resourcev3.ListenerType
	clusterType  = resourcev3.ClusterType
	routeType    = resourcev3.RouteType
	endpointType = resourcev3.EndpointType
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
}

func newReconciler(s *Server) *reconciler {
	return &reconciler{s: s, online: map[proxyKey]bool{}}
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
		r.recomputeAll(ctx) // catch up with what happened before the watch
		r.loop(ctx, events)
	}
}

// loop consumes events until the channel closes (ctx ended or the watch
// fell behind, in which case run re-watches and recomputes everything).
func (r *reconciler) loop(ctx context.Context, events <-chan store.Event) {
	dirty := map[string]bool{}
	var timer <-chan time.Time
	var deadline time.Time
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
			}
			dirty[m] = true
			now := time.Now()
			if timer == nil {
				deadline = now.Add(maxDebounce)
			}
			wait := min(r.s.cfg.Debounce, time.Until(deadline))
			timer = time.After(wait)
		case <-timer:
			timer = nil
			meshes := sortedKeys(dirty)
			dirty = map[string]bool{}
			for _, m := range meshes {
				if err := r.recomputeMesh(ctx, m); err != nil && ctx.Err() == nil {
					r.s.log.Error("recomputing proxies", "mesh", m, "err", err)
				}
			}
		case <-ctx.Done():
			return
		}
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
		return nil
	}
	ix, err := loadIndex(ctx, r.s.mgr, meshName)
	if err != nil {
		return err
	}
	for _, ps := range proxies {
		if err := r.push(ctx, ix, ps); err != nil {
			r.s.log.Warn("building a proxy's config", "proxy", ps.info.key.String(), "err", err)
		}
	}
	return nil
}

// refreshProxy computes and sets one proxy's config (on connect).
func (r *reconciler) refreshProxy(ctx context.Context, ps *proxyState) error {
	ix, err := loadIndex(ctx, r.s.mgr, ps.info.key.Mesh)
	if err != nil {
		return err
	}
	return r.push(ctx, ix, ps)
}

// loadIndex reads a mesh's snapshot from the store and indexes it.
func loadIndex(ctx context.Context, mgr *manager.Manager, meshName string) (*proxymodel.Index, error) {
	reg := mgr.Registry()
	meshDesc, _ := reg.ByKind(kinds.Mesh)
	dpDesc, _ := reg.ByKind(kinds.Dataplane)
	snap := &proxymodel.MeshSnapshot{Mesh: meshName}
	if m, err := mgr.Get(ctx, meshDesc, "", meshName); err == nil {
		snap.MeshSpec = m.Spec.(*mesh.Mesh)
	}
	dps, _, err := mgr.List(ctx, dpDesc, manager.ListOptions{Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the dataplanes of mesh %q: %w", meshName, err)
	}
	for _, dp := range dps {
		snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: dp.Meta.Name, Spec: dp.Spec.(*mesh.Dataplane)})
	}
	all, err := insights.List(ctx, mgr.Store(), meshName)
	if err != nil {
		return nil, fmt.Errorf("listing the insights of mesh %q: %w", meshName, err)
	}
	snap.Offline = map[string]bool{}
	for k, in := range all {
		if len(in.Subscriptions) > 0 && !in.Online() {
			snap.Offline[k.Name] = true
		}
	}
	return proxymodel.NewIndex(snap), nil
}

// Generate returns the xDS resources of one proxy of the index.
func Generate(ix *proxymodel.Index, name string, proxyless bool) (*build.Resources, error) {
	if proxyless {
		return build.Proxyless(ix)
	}
	p, err := ix.Build(name)
	if err != nil {
		return nil, err
	}
	return build.Sidecar(p)
}

// push builds a proxy's resources and sets them in the cache when a type's
// content changed. Versions are content hashes, so unchanged types are not
// resent.
func (r *reconciler) push(ctx context.Context, ix *proxymodel.Index, ps *proxyState) error {
	res, err := Generate(ix, ps.info.key.Name, ps.info.proxyless)
	if err != nil {
		return err
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
			return err
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
		return nil
	}
	if err := r.s.cache.SetSnapshot(ctx, ps.info.nodeID, snap); err != nil {
		return fmt.Errorf("setting the snapshot of %s: %w", ps.info.key, err)
	}
	r.s.log.Debug("pushed config", "proxy", ps.info.key.String(), "versions", versions)
	return nil
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
