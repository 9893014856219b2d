package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/store"
)

// insightFlushDelay batches ACK/NACK/response counters of a proxy before
// they are written, so a push to many proxies does not become as many
// writes per type.
const insightFlushDelay = 250 * time.Millisecond

// insightWriter batches insight mutations per proxy.
type insightWriter struct {
	st      store.Store
	log     *slog.Logger
	mu      sync.Mutex
	pending map[proxyKey][]func(*insights.DataplaneInsight)
	wake    chan struct{}
}

func newInsightWriter(st store.Store, log *slog.Logger) *insightWriter {
	return &insightWriter{st: st, log: log, pending: map[proxyKey][]func(*insights.DataplaneInsight){}, wake: make(chan struct{}, 1)}
}

// queue records a mutation to write soon.
func (w *insightWriter) queue(key proxyKey, fn func(*insights.DataplaneInsight)) {
	if key.Mesh == zoneProxyMesh {
		return // zone proxies keep no DataplaneInsight (zoneproxy.go)
	}
	w.mu.Lock()
	w.pending[key] = append(w.pending[key], fn)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes queued mutations a short while after they arrive.
func (w *insightWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(insightFlushDelay):
		}
		w.flush(ctx)
	}
}

// flush writes everything queued.
func (w *insightWriter) flush(ctx context.Context) {
	w.mu.Lock()
	batch := w.pending
	w.pending = map[proxyKey][]func(*insights.DataplaneInsight){}
	w.mu.Unlock()
	for key, fns := range batch {
		w.write(ctx, key, fns)
	}
}

// flushKey writes what is queued for one proxy now.
func (w *insightWriter) flushKey(ctx context.Context, key proxyKey) {
	w.mu.Lock()
	fns := w.pending[key]
	delete(w.pending, key)
	w.mu.Unlock()
	if len(fns) > 0 {
		w.write(ctx, key, fns)
	}
}

func (w *insightWriter) write(ctx context.Context, key proxyKey, fns []func(*insights.DataplaneInsight)) {
	err := insights.Update(ctx, w.st, key.Mesh, key.Name, func(in *insights.DataplaneInsight) {
		for _, fn := range fns {
			fn(in)
		}
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("writing an insight", "proxy", key.String(), "err", err)
	}
}
