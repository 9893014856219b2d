package admin

import (
	goruntime "runtime"
	"runtime/metrics"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// serverCollector reports Envoy's server.* gauges for the admin server's
// process: live, state, uptime, memory and concurrency.
type serverCollector struct{ s *Server }

var _ stats.Collector = serverCollector{}

// memSamples are the runtime/metrics read for server.memory_*; reading
// them does not stop the world.
var memSamples = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/total:bytes"}

// Samples implements stats.Collector.
func (c serverCollector) Samples() []stats.Sample {
	live, state := uint64(0), uint64(2) // pre-initializing
	switch {
	case c.s.draining.Load():
		state = 1
	case c.s.opts.Ready():
		live, state = 1, 0
	}
	ms := make([]metrics.Sample, len(memSamples))
	for i, n := range memSamples {
		ms[i].Name = n
	}
	metrics.Read(ms)
	mem := func(i int) uint64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return ms[i].Value.Uint64()
		}
		return 0
	}
	return []stats.Sample{
		{Name: "server.live", Kind: stats.KindGauge, Value: live},
		{Name: "server.state", Kind: stats.KindGauge, Value: state},
		{Name: "server.uptime", Kind: stats.KindGauge, Value: uint64(time.Since(c.s.started) / time.Second)},
		{Name: "server.memory_allocated", Kind: stats.KindGauge, Value: mem(0)},
		{Name: "server.memory_heap_size", Kind: stats.KindGauge, Value: mem(1)},
		{Name: "server.concurrency", Kind: stats.KindGauge, Value: uint64(goruntime.GOMAXPROCS(0))},
	}
}
