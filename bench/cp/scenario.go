package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/trellis-mesh/trellis/bench/internal/procstat"
)

// benchMesh is the mesh the simulated proxies join.
const benchMesh = "bench"

// result is what one run (one N) measured.
type result struct {
	n int
	// connect is from the first dial to the last proxy's first full config.
	connect     time.Duration
	firstConfig []time.Duration
	// firstResponse is per proxy from opening its stream to its first response.
	firstResponse []time.Duration
	configured    int
	cpuConnect    float64
	// connectResponses is how many responses the proxies ACKed until all
	// had their first config.
	connectResponses int64
	// rssEmpty is the control plane's RSS before any proxy connected;
	// rssConnected once all are connected and it is quiet; hwm its peak.
	rssEmpty, rssConnected, hwm int64
	heapInuse                   int64
	settled                     bool
	// idleCPU is CPU seconds per second while nothing changes.
	idleCPU   float64
	clientCPU float64
	changes   []change
	failures  int
	err       error
}

// change is one measured change.
type change struct {
	name     string
	affected int
	conv     []time.Duration
	// cpu is the control plane's CPU seconds from the API call until every
	// affected proxy ACKed; tail adds the -tail after (insight writes).
	cpu, tail float64
	// clientCPU is this benchmark process's CPU seconds over the same
	// time as cpu: the simulated proxies decoding and ACKing, on the same
	// cores.
	clientCPU float64
	timedOut  bool
}

// runOne measures one fleet size against a fresh control plane.
func runOne(ctx context.Context, o options, n int) (res *result) {
	res = &result{n: n}
	dir, err := os.MkdirTemp(o.workDir, fmt.Sprintf("cp-bench-%d-", n))
	if err != nil {
		res.err = err
		return res
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	c, err := startCP(ctx, o.cpBin, dir, o.store, o.profileDir != "")
	if err != nil {
		res.err = err
		return res
	}
	defer c.stop()
	if c.diagAddr != "" {
		progress("N=%d: trellis-cp pid %d, profiles at http://%s/debug/pprof/", n, c.pid, c.diagAddr)
	}
	if err := setUpMesh(ctx, c); err != nil {
		res.err = err
		return res
	}
	time.Sleep(500 * time.Millisecond) // the mesh's CA is created on the Mesh event
	before, err := c.usage()
	if err != nil {
		res.err = err
		return res
	}
	res.rssEmpty = before.rssKiB

	f, err := newFleet(o, n, benchMesh, c.dpAddr, c.caFile)
	if err != nil {
		res.err = err
		return res
	}
	defer f.close()
	clientBefore, _ := processUsage(os.Getpid())
	stopProfile := o.startProfile(ctx, c, fmt.Sprintf("cpu-connect-%s-%d.pprof", o.mode, n))
	t0 := time.Now()
	f.connect(ctx)
	progress("N=%d: connecting %d proxies (%s)", n, n, o.mode)
	if err := waitFor(ctx, c, f.allReady, o.timeout, func() string {
		return fmt.Sprintf("%d of %d proxies configured", f.configured.Load(), n)
	}); err != nil {
		res.err = fmt.Errorf("first config: %w", err)
	}
	res.firstConfig, _ = f.firstConfigTimes()
	res.firstResponse = f.firstResponseTimes()
	res.configured = len(res.firstConfig)
	_, last := f.firstConfigTimes()
	res.connect = last.Sub(t0)
	after, _ := c.usage()
	res.cpuConnect = after.cpu - before.cpu
	res.connectResponses = f.responses.Load()
	res.connectResponses = f.responses.Load()
	stopProfile()
	if res.err != nil {
		res.failures, _ = f.failures()
		return res
	}
	progress("N=%d: all configured in %s; waiting for the control plane to go quiet", n, res.connect.Round(time.Millisecond))
	res.settled = settle(ctx, c)
	idle0, _ := c.usage()
	res.rssConnected = idle0.rssKiB
	sleepCtx(ctx, o.idle)
	idle1, _ := c.usage()
	res.idleCPU = (idle1.cpu - idle0.cpu) / idle1.at.Sub(idle0.at).Seconds()
	if o.profileDir != "" {
		_ = c.profile(ctx, "heap?gc=1", filepath.Join(o.profileDir, fmt.Sprintf("heap-%s-%d.pprof", o.mode, n)))
	}
	res.heapInuse = heapInuse(ctx, c)

	for round := 1; round <= o.rounds; round++ {
		marker := fmt.Sprintf("bench-deny-%03d", round)
		ch := measureChange(ctx, o, c, f, fmt.Sprintf("policy change (MeshTrafficPermission, every proxy)#%d", round), ldsType, marker,
			func(int) bool { return true },
			func() error {
				return c.put(ctx, "/meshes/"+benchMesh+"/meshtrafficpermissions/bench-allow", trafficPermission(marker))
			})
		res.changes = append(res.changes, ch)
		settle(ctx, c)

		target := round % o.services
		extra := fmt.Sprintf("extra-%d", round)
		// Proxies are in 10.0.0.0/16 up to 65,534 of them: 10.255.255.x is free.
		addr := fmt.Sprintf("10.255.255.%d", 255-round)
		// The marker is the address as a protobuf string: length, then bytes.
		ch = measureChange(ctx, o, c, f, fmt.Sprintf("endpoint added (one Dataplane of %s)#%d", serviceName(target), round), edsType, string(rune(len(addr)))+addr,
			func(i int) bool { return slices.Contains(f.outboundsOf(i), target) },
			func() error {
				return c.put(ctx, "/meshes/"+benchMesh+"/dataplanes/"+extra, extraDataplane(extra, serviceName(target), addr))
			})
		res.changes = append(res.changes, ch)
		settle(ctx, c)
	}
	clientAfter, _ := processUsage(os.Getpid())
	res.clientCPU = clientAfter.cpu - clientBefore.cpu
	res.hwm, _ = procstat.StatusKiB(c.pid, "VmHWM")
	res.failures, err = f.failures()
	if err != nil && res.err == nil {
		res.err = err
	}
	return res
}

// measureChange publishes a watch, makes the change and waits until every
// affected proxy ACKed a response carrying marker.
func measureChange(ctx context.Context, o options, c *controlPlane, f *fleet, name, typeURL, marker string, affected func(int) bool, apply func() error) change {
	ch := change{name: name}
	w := f.startWatch(typeURL, marker, affected)
	ch.affected = int(w.left.Load())
	stopProfile := o.startProfile(ctx, c, fmt.Sprintf("cpu-%s-%s-%d.pprof", slug(name), o.mode, f.n))
	defer stopProfile()
	u0, _ := c.usage()
	cl0, _ := processUsage(os.Getpid())
	t0 := time.Now()
	if err := apply(); err != nil {
		progress("%s: %v", name, err)
		ch.timedOut = true
		return ch
	}
	err := waitFor(ctx, c, w.done, o.timeout, func() string {
		return fmt.Sprintf("%d of %d proxies ACKed", ch.affected-int(w.left.Load()), ch.affected)
	})
	ch.timedOut = err != nil
	u1, _ := c.usage()
	cl1, _ := processUsage(os.Getpid())
	ch.clientCPU = cl1.cpu - cl0.cpu
	sleepCtx(ctx, o.tail)
	u2, _ := c.usage()
	ch.conv = w.convergence(t0)
	ch.cpu, ch.tail = u1.cpu-u0.cpu, u2.cpu-u0.cpu
	progress("N=%d: %s: %d proxies, max %s", f.n, name, len(ch.conv), maxDuration(ch.conv).Round(time.Millisecond))
	return ch
}

// waitFor waits for done, printing progress every 10 s; it fails after
// timeout or when the control plane exits.
func waitFor(ctx context.Context, c *controlPlane, done <-chan struct{}, timeout time.Duration, status func() string) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-deadline:
			return fmt.Errorf("timed out after %s: %s", timeout, status())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := c.exited(); err != nil {
				return err
			}
			progress("  ... %s", status())
		}
	}
}

// settle waits (at most 60 s) until the control plane used under 3% of a
// core over one second; it reports whether it did.
func settle(ctx context.Context, c *controlPlane) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		u0, err := c.usage()
		if err != nil {
			return false
		}
		sleepCtx(ctx, time.Second)
		u1, err := c.usage()
		if err != nil {
			return false
		}
		if (u1.cpu-u0.cpu)/u1.at.Sub(u0.at).Seconds() < 0.03 {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func setUpMesh(ctx context.Context, c *controlPlane) error {
	mesh, _ := json.Marshal(map[string]any{
		"type": "Mesh", "name": benchMesh,
		"mtls": map[string]any{"enabledBackend": "ca-1", "backends": []any{
			map[string]any{"name": "ca-1", "type": "builtin", "mode": "STRICT"},
		}},
	})
	if err := c.put(ctx, "/meshes/"+benchMesh, mesh); err != nil {
		return err
	}
	return c.put(ctx, "/meshes/"+benchMesh+"/meshtrafficpermissions/bench-allow", trafficPermission(""))
}

// trafficPermission is a mesh-wide MeshTrafficPermission allowing every
// client; with a marker, it also denies one (absent) service named marker,
// which changes every inbound's RBAC rules.
func trafficPermission(marker string) []byte {
	from := []any{}
	if marker != "" {
		from = append(from, map[string]any{"targetRef": map[string]any{"kind": "MeshService", "name": marker}, "default": map[string]any{"action": "Deny"}})
	}
	from = append(from, map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"action": "Allow"}})
	b, _ := json.Marshal(map[string]any{
		"type": "MeshTrafficPermission", "mesh": benchMesh, "name": "bench-allow",
		"spec": map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "from": from},
	})
	return b
}

// extraDataplane is a Dataplane of service svc at addr that no proxy
// serves: never connected, so its endpoint is ready at once.
func extraDataplane(name, svc, addr string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "Dataplane", "mesh": benchMesh, "name": name,
		"networking": map[string]any{
			"address": addr,
			"inbound": []any{map[string]any{"port": inboundPort, "servicePort": servicePort,
				"tags": map[string]any{"kuma.io/service": svc, "kuma.io/protocol": "http"}}},
		},
	})
	return b
}
