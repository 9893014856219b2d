package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
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
	secretType   = resourcev3.SecretType
)

// maxDebounce caps how long a stream of changes can delay a recompute.
const maxDebounce = 500 * time.Millisecond

// reconciler recomputes the xDS of this instance's connected proxies when
// the store changes: a change marks its mesh dirty, a short debounce
// batches bursts, and a proxy is pushed only when its output changed.
// Events are read by one goroutine and recomputes run on another, so a
// long recompute never lets the store's watch buffer overflow.
type reconciler struct {
	s *Server
	// online remembers each proxy's last seen online status, so that insight
	// writes (ACK counters) recompute nothing unless a proxy came or went.
	online map[proxyKey]bool
	// rotation schedules the recomputes that renew workload certificates.
	rotation *rotation

	// mu serializes recomputes; it guards cache, memos and the proxies'
	// reused inbound parts.
	mu    sync.Mutex
	cache *meshCache
	memos map[string]*outputMemo

	// requests are meshes with newly attached proxies waiting for their
	// first config; wake tells the loop.
	reqMu    sync.Mutex
	requests map[string]bool
	wake     chan struct{}
}

func newReconciler(s *Server) *reconciler {
	return &reconciler{s: s, online: map[proxyKey]bool{}, rotation: newRotation(),
		cache: newMeshCacheWithZones(s), memos: map[string]*outputMemo{},
		requests: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// request asks for a recompute of a mesh soon (a proxy attached).
func (r *reconciler) request(meshName string) {
	r.reqMu.Lock()
	r.requests[meshName] = true
	r.reqMu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reconciler) takeRequests() []string {
	r.reqMu.Lock()
	defer r.reqMu.Unlock()
	out := sortedKeys(r.requests)
	clear(r.requests)
	return out
}

// onlineChanged reports whether an insight change flipped a proxy between
// online and offline (which adds or removes its endpoints).
func (r *reconciler) onlineChanged(ctx context.Context, ev store.Event) bool {
	key := proxyKey{Mesh: ev.Mesh, Name: ev.Name}
	now := false
	if ev.Op != store.OpDelete {
		rec, err := r.s.st.Get(ctx, store.Key{Kind: insights.Kind, Mesh: ev.Mesh, Name: ev.Name})
		if errors.Is(err, store.ErrNotFound) {
			rec = &store.Record{}
		} else if err != nil {
			return true
		}
		if _, now, err = connectionState(rec.Spec); err != nil {
			return true
		}
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

// batch is one recompute's work: dirty meshes, and those among them whose
// Mesh changed (their builtin CAs are created even when no proxy of the
// mesh is connected here).
type batch struct {
	meshes []string
	newCA  map[string]bool
}

// loop consumes events until the channel closes (ctx ended or the watch
// fell behind, in which case run re-watches and recomputes everything).
// Besides store changes, it recomputes meshes whose workload certificates
// are due to be reissued, on one timer, and meshes with new proxies. A due
// batch starts when the previous one has finished; changes arriving in the
// meantime wait for the next.
func (r *reconciler) loop(ctx context.Context, events <-chan store.Event) {
	var pending debouncer
	newCA := map[string]bool{}
	renew := time.NewTimer(time.Hour)
	defer renew.Stop()
	r.rotation.arm(renew)
	var busy chan struct{} // closed when the running batch is done
	start := func() {
		r.s.timer.setBatchSeen(pending.deadline.Add(-maxDebounce))
		meshes := pending.take()
		b := batch{meshes: meshes, newCA: map[string]bool{}}
		for _, m := range meshes {
			if newCA[m] {
				b.newCA[m] = true
				delete(newCA, m)
			}
		}
		done := make(chan struct{})
		busy = done
		go func() {
			defer close(done)
			r.recomputeBatch(ctx, b)
		}()
	}
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
			} else if isZoneProxyKind(ev.Kind) {
				for _, m := range r.connectedMeshes() { // zoneproxy.go
					pending.mark(m, r.s.cfg.Debounce)
				}
				continue
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
			pending.mark(m, r.s.cfg.Debounce)
		case <-r.wake:
			for _, m := range r.takeRequests() {
				pending.mark(m, r.s.cfg.Debounce)
			}
		case <-pending.timer:
			pending.timer, pending.fired = nil, true
			if busy == nil {
				start()
			}
		case <-busy:
			busy = nil
			if pending.fired {
				start()
			}
		case <-r.rotation.wake:
			r.rotation.arm(renew)
		case <-renew.C:
			for _, m := range r.rotation.due(time.Now()) {
				pending.mark(m, r.s.cfg.Debounce)
			}
			r.rotation.arm(renew)
		case <-ctx.Done():
			return
		}
	}
}

// recomputeBatch creates the CAs of changed meshes and recomputes the
// batch's meshes.
func (r *reconciler) recomputeBatch(ctx context.Context, b batch) {
	for _, m := range b.meshes {
		if b.newCA[m] {
			r.ensureCA(ctx, m)
		}
		if err := r.recomputeMesh(ctx, m); err != nil && ctx.Err() == nil {
			r.s.log.Error("recomputing proxies", "mesh", m, "err", err)
		}
	}
	if err := r.recomputeZoneProxies(ctx); err != nil && ctx.Err() == nil { // zoneproxy.go
		r.s.log.Error("recomputing zone proxies", "err", err)
	}
}

// debouncer batches dirty meshes: the batch is due debounce after the last
// change, and at most maxDebounce after the first.
type debouncer struct {
	dirty    map[string]bool
	timer    <-chan time.Time
	deadline time.Time
	// fired is set once the batch is due (it waits for the running one).
	fired bool
}

func (d *debouncer) mark(mesh string, debounce time.Duration) {
	if d.dirty == nil {
		d.dirty = map[string]bool{}
		d.deadline = time.Now().Add(maxDebounce)
	}
	d.dirty[mesh] = true
	if !d.fired {
		d.timer = time.After(min(debounce, time.Until(d.deadline)))
	}
}

// take returns the dirty meshes, sorted, and starts a new batch.
func (d *debouncer) take() []string {
	out := sortedKeys(d.dirty)
	d.dirty, d.timer, d.fired = nil, nil, false
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
	if r.s.cfg.SyncedCA {
		return
	}
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
	r.s.timer.setBatchSeen(time.Now())
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

// recomputeMesh loads a mesh once and pushes its connected proxies, on as
// many goroutines as there are CPUs.
func (r *reconciler) recomputeMesh(ctx context.Context, meshName string) error {
	if meshName == zoneProxyMesh {
		return r.recomputeZoneProxies(ctx) // zoneproxy.go
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	proxies := r.connectedIn(meshName)
	if len(proxies) == 0 {
		r.cache.forget(meshName)
		delete(r.memos, meshName)
		r.rotation.set(meshName, time.Time{})
		return nil
	}
	t0 := time.Now()
	ms, err := r.cache.load(ctx, r.s.ca, meshName)
	if err != nil {
		r.rotation.set(meshName, time.Now().Add(retryAfterError))
		return err
	}
	memo := r.memo(meshName)
	// Proxies waiting for their first config go first: while many connect
	// at once, the others are being sent endpoint updates.
	slices.SortStableFunc(proxies, func(a, b *proxyState) int {
		return cmp.Compare(boolInt(a.pushed != nil), boolInt(b.pushed != nil))
	})
	var mu sync.Mutex
	var earliest time.Time
	var pushed atomic.Int64
	parallel(len(proxies), func(i int) {
		ps := proxies[i]
		renew, changed, err := r.push(ctx, ms, memo, ps)
		if err != nil {
			r.s.log.Warn("building a proxy's config", "proxy", ps.info().key.String(), "err", err)
			return
		}
		if changed {
			pushed.Add(1)
		}
		mu.Lock()
		earliest = earlier(earliest, renew)
		mu.Unlock()
	})
	memo.sweep()
	r.s.log.Debug("recomputed a mesh", "mesh", meshName, "proxies", len(proxies), "pushed", pushed.Load(), "took", time.Since(t0))
	r.rotation.set(meshName, earliest)
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parallel calls f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

func (r *reconciler) memo(meshName string) *outputMemo {
	m := r.memos[meshName]
	if m == nil {
		m = newOutputMemo()
		r.memos[meshName] = m
	}
	return m
}

// refreshProxy computes and sets one proxy's config now (test hooks).
func (r *reconciler) refreshProxy(ctx context.Context, ps *proxyState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms, err := r.cache.load(ctx, r.s.ca, ps.info().key.Mesh)
	if err != nil {
		return err
	}
	renew, _, err := r.push(ctx, ms, r.memo(ps.info().key.Mesh), ps)
	if err != nil {
		return err
	}
	r.rotation.note(ps.info().key.Mesh, renew)
	return nil
}

// push builds a proxy's resources and sets them in the cache when a type's
// content changed. Versions are content hashes, so unchanged types are not
// resent. It returns when one of the proxy's certificates is due to be
// reissued (zero without mTLS), and whether it pushed.
func (r *reconciler) push(ctx context.Context, ms *meshState, memo *outputMemo, ps *proxyState) (time.Time, bool, error) {
	var out *output
	var renew time.Time
	var err error
	t0 := time.Now()
	if ps.info().proxyless || r.s.isCorrupt(ps.info().key) {
		var res *build.Resources
		if res, renew, err = generate(ms, ps.info().key.Name, ps.info().proxyless, ps.info().dnsPort); err == nil {
			if r.s.isCorrupt(ps.info().key) {
				res = corruptResources(res)
			}
			out, err = newOutput(res)
		}
	} else {
		out, renew, err = sidecarOutput(ms, memo, ps)
	}
	r.s.cfg.Metrics.ObserveGeneration(time.Since(t0), err)
	if err != nil {
		return time.Time{}, false, err
	}
	if out == ps.pushed {
		return renew, false, nil // the very output last pushed
	}
	versions := out.versions()
	r.s.mu.Lock()
	same := equalVersions(ps.versions, versions)
	if !same {
		ps.versions = versions
	}
	r.s.mu.Unlock()
	ps.pushed = out
	if same {
		return renew, false, nil
	}
	// Noted first: the cache may answer the proxy before SetSnapshot returns.
	r.s.timer.snapshotSet(ps.info().nodeID, r.s.timer.batchSeen())
	if err := r.s.cache.SetSnapshot(ctx, ps.info().nodeID, newResourceSnapshot(out, versions)); err != nil {
		return time.Time{}, false, fmt.Errorf("setting the snapshot of %s: %w", ps.info().key, err)
	}
	r.s.noteCertificate(ms, ps)
	r.s.mu.Lock()
	gone := r.s.byNodeID[ps.info().nodeID] == nil
	r.s.mu.Unlock()
	if gone { // it disconnected while this recompute ran: keep no snapshot
		r.s.cache.ClearSnapshot(ps.info().nodeID)
	}
	r.s.log.Debug("pushed config", "proxy", ps.info().key.String(), "versions", versions)
	return renew, true, nil
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
