package server

import (
	"sync"
	"time"
)

// retryAfterError is when a mesh whose CA failed to load is tried again,
// so that certificates keep being renewed once the CA is back.
const retryAfterError = 10 * time.Second

// rotation tracks, per mesh, the earliest time a workload certificate of
// one of this instance's connected proxies is due to be reissued. The
// reconciler keeps one timer for the earliest of them all and recomputes
// the due meshes when it fires: no per-proxy timers, no polling.
type rotation struct {
	mu sync.Mutex
	at map[string]time.Time
	// wake tells the reconciler loop to re-arm its timer.
	wake chan struct{}
}

func newRotation() *rotation {
	return &rotation{at: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// set replaces a mesh's due time (zero: nothing due).
func (r *rotation) set(mesh string, t time.Time) {
	r.mu.Lock()
	if t.IsZero() {
		delete(r.at, mesh)
	} else {
		r.at[mesh] = t
	}
	r.mu.Unlock()
	r.poke()
}

// note moves a mesh's due time earlier to t (one proxy was pushed).
func (r *rotation) note(mesh string, t time.Time) {
	if t.IsZero() {
		return
	}
	r.mu.Lock()
	cur, ok := r.at[mesh]
	earlier := !ok || t.Before(cur)
	if earlier {
		r.at[mesh] = t
	}
	r.mu.Unlock()
	if earlier {
		r.poke()
	}
}

func (r *rotation) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// next returns the earliest due time, zero when none.
func (r *rotation) next() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out time.Time
	for _, t := range r.at {
		out = earlier(out, t)
	}
	return out
}

// due removes and returns the meshes due at now.
func (r *rotation) due(now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for m, t := range r.at {
		if !t.After(now) {
			out = append(out, m)
			delete(r.at, m)
		}
	}
	return out
}

// arm sets timer to fire at the earliest due time (stopped when none).
func (r *rotation) arm(timer *time.Timer) {
	timer.Stop()
	if t := r.next(); !t.IsZero() {
		timer.Reset(max(time.Until(t), 0))
	}
}

// earlier returns the earlier of two times, a zero time counting as unset.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
