package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// BenchmarkPolicyChange measures what a mesh-wide policy change costs the
// control plane per proxy before go-control-plane and the streams (bench/cp
// measures those too): loading the mesh and building every proxy's output,
// in the shape of bench/cp (mTLS STRICT, the default policies, one HTTP
// inbound and 5 outbounds per proxy), after a MeshTrafficPermission
// change. Reported per proxy.
func BenchmarkPolicyChange(b *testing.B) {
	const proxies = 500
	mgr, mtp := benchMesh(b, proxies, 50)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	cas := ca.New(mgr, log)
	cache := newMeshCache(mgr)
	memo := newOutputMemo()
	states := make([]*proxyState, proxies)
	for i := range states {
		states[i] = newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: fmt.Sprintf("dp-%d", i)}})
	}
	recompute := func() {
		ms, err := cache.load(ctx, cas, "default")
		if err != nil {
			b.Fatal(err)
		}
		for _, ps := range states {
			if _, _, err := sidecarOutput(ms, memo, ps); err != nil {
				b.Fatal(err)
			}
		}
		memo.sweep()
	}
	recompute()
	var cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		mtp(i%2 + 1)
		b.StartTimer()
		before := cpuTime()
		recompute()
		cpu += cpuTime() - before
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*proxies), "ns/proxy")
	// CPU time is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*proxies), "cpu-ns/proxy")
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMesh makes the mesh of BenchmarkPolicyChange, and returns a
// function applying a MeshTrafficPermission with deny rules.
func benchMesh(b *testing.B, proxies, services int) (*manager.Manager, func(deny int)) {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	res, err := mgr.Registry().Decode([]byte("type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n    mode: STRICT\n"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := mgr.Apply(ctx, res); err != nil {
		b.Fatal(err)
	}
	if err := meshdefaults.Ensure(ctx, mgr, res, log); err != nil {
		b.Fatal(err)
	}
	mtp := func(deny int) {
		doc := "type: MeshTrafficPermission\nname: mtp\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  from:\n"
		for i := range deny {
			doc += fmt.Sprintf("  - targetRef:\n      kind: MeshService\n      name: absent-%d\n    default:\n      action: Deny\n", i)
		}
		doc += "  - targetRef:\n      kind: Mesh\n    default:\n      action: Allow\n"
		r, err := mgr.Registry().Decode([]byte(doc))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mgr.Apply(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	mtp(0)
	for i := range proxies {
		var outs strings.Builder
		for j := 1; j <= 5; j++ {
			fmt.Fprintf(&outs, "  - port: %d\n    tags:\n      kuma.io/service: svc-%d\n", 20000+j, (i+j)%services)
		}
		doc := fmt.Sprintf("type: Dataplane\nmesh: default\nname: dp-%d\nnetworking:\n  address: 10.%d.%d.%d\n  inbound:\n  - port: 8080\n    servicePort: 18080\n    tags:\n      kuma.io/service: svc-%d\n      kuma.io/protocol: http\n  outbound:\n%s",
			i, i/65536, i/256%256, i%256, i%services, outs.String())
		r, err := mgr.Registry().Decode([]byte(doc))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mgr.Apply(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	return mgr, mtp
}

// BenchmarkFingerprintOf hashes the inbound and outbound parts of the
// models of BenchmarkPolicyChange's mesh; reported per proxy.
func BenchmarkFingerprintOf(b *testing.B) {
	const proxies = 500
	mgr, _ := benchMesh(b, proxies, 50)
	ms, err := newMeshCache(mgr).load(context.Background(), ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil))), "default")
	if err != nil {
		b.Fatal(err)
	}
	var parts []*proxymodel.Proxy
	for i := range proxies {
		p, _, err := ms.model(fmt.Sprintf("dp-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		in, out := *p, *p
		in.Outbounds, in.Policies = nil, policiesPart(p.Policies, true)
		out.Inbounds, out.Name, out.Policies = nil, "", policiesPart(p.Policies, false)
		parts = append(parts, &in, &out)
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range parts {
			if _, ok := ms.fingerprintOf(p); !ok {
				b.Fatal("not hashable")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*proxies), "ns/proxy")
}
