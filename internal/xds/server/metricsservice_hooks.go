package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
)

// xdsTimer measures, per stream, what the control plane's metrics report
// about xDS: when a change was seen for a proxy (push latency: change →
// response sent) and when each response was sent (ACK latency: response
// → ACK). It holds only the last response per type URL of a stream.
type xdsTimer struct {
	metrics *cpmetrics.Metrics

	mu sync.Mutex
	// sent is the last response per stream and type URL.
	sent map[int64]map[string]sentResponse
	// changed is, per node ID, when the change behind its newest
	// snapshot was seen; cleared by the first response that follows.
	changed map[string]time.Time
	// certs is, per node ID, the expiry of the last workload certificate
	// noted in its insight (metricsservice_mtls.go).
	certs map[string]time.Time
	// seen is when the change behind the running recompute was first
	// seen (unix nanoseconds); recomputes run one at a time.
	seen atomic.Int64
}

// setBatchSeen notes when the change behind the next recompute was seen.
func (t *xdsTimer) setBatchSeen(at time.Time) { t.seen.Store(at.UnixNano()) }

// batchSeen returns when the change behind the running recompute was seen.
func (t *xdsTimer) batchSeen() time.Time {
	if n := t.seen.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

type sentResponse struct {
	version string
	at      time.Time
}

func newXDSTimer(m *cpmetrics.Metrics) *xdsTimer {
	return &xdsTimer{metrics: m, sent: map[int64]map[string]sentResponse{}, changed: map[string]time.Time{}}
}

// snapshotSet notes that a proxy's new config, caused by a change seen at
// seen, is in the cache.
func (t *xdsTimer) snapshotSet(nodeID string, seen time.Time) {
	if t.metrics == nil || seen.IsZero() {
		return
	}
	t.mu.Lock()
	if _, ok := t.changed[nodeID]; !ok {
		t.changed[nodeID] = seen
	}
	t.mu.Unlock()
}

// responseSent notes a response on a stream of the proxy nodeID ("" when
// the stream has not identified its proxy yet).
func (t *xdsTimer) responseSent(id int64, nodeID, typeURL, version string) {
	t.metrics.ResponseSent(typeURL)
	if t.metrics == nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	m := t.sent[id]
	if m == nil {
		m = map[string]sentResponse{}
		t.sent[id] = m
	}
	m[typeURL] = sentResponse{version: version, at: now}
	seen, ok := t.changed[nodeID]
	if ok {
		delete(t.changed, nodeID)
	}
	t.mu.Unlock()
	if ok {
		t.metrics.ObservePush(now.Sub(seen))
	}
}

// answered notes a proxy's ACK or NACK of the response of typeURL with
// version ("" when unknown) on a stream.
func (t *xdsTimer) answered(id int64, meshName, typeURL, version string, nack bool) {
	t.metrics.RequestReceived(meshName, typeURL, nack)
	if t.metrics == nil || nack {
		return
	}
	t.mu.Lock()
	r, ok := t.sent[id][typeURL]
	if ok && (version == "" || r.version == "" || r.version == version) {
		delete(t.sent[id], typeURL)
	} else {
		ok = false
	}
	t.mu.Unlock()
	if ok {
		t.metrics.ObserveACK(time.Since(r.at))
	}
}

// streamClosed forgets a stream.
func (t *xdsTimer) streamClosed(id int64) {
	t.mu.Lock()
	delete(t.sent, id)
	t.mu.Unlock()
}

// proxyGone forgets a proxy's pending change and certificate.
func (t *xdsTimer) proxyGone(nodeID string) {
	t.mu.Lock()
	delete(t.changed, nodeID)
	delete(t.certs, nodeID)
	t.mu.Unlock()
}

// xdsMode is the xds_mode label of a stream.
func xdsMode(delta bool) string {
	if delta {
		return cpmetrics.ModeDelta
	}
	return cpmetrics.ModeSotW
}
