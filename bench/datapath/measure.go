package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/bench/internal/procstat"
)

// rssSampleEvery is how often the proxies' RSS is read during the
// fixed-rate rounds (the figure reported is the largest reading).
const rssSampleEvery = 250 * time.Millisecond

// measureAll runs the idle, fixed-rate and closed-loop measurements (the
// TCP scenario: idle, then throughput).
func (b *bench) measureAll(ctx context.Context) error {
	var err error
	if b.statsBefore, err = b.sidecarStats(); err != nil {
		return err
	}
	if err := b.measureIdle(ctx); err != nil {
		return err
	}
	if b.scenario == scenarioTCP {
		if err := b.measureTCP(ctx); err != nil {
			return err
		}
		b.loadMid = loadAverage()
		return b.finish()
	}

	if b.o.warmup > 0 {
		for _, t := range b.targets {
			rate := b.o.rates[0]
			progress("warm-up: %s, %.0f req/s, %d connections, %s", t.label, rate, b.o.conns, b.o.warmup)
			l := load{url: t.url, qps: rate, conns: b.o.conns, dur: b.o.warmup}
			var discard result
			if err := b.runOne(ctx, "warmup-"+slug(t.label), t, l, &discard, ""); err != nil {
				return err
			}
		}
	}

	for _, rate := range b.o.rates {
		l := load{qps: rate, conns: b.o.conns, dur: b.o.duration / time.Duration(b.o.rounds)}
		for round := range b.o.rounds {
			for _, t := range b.rotation(round) {
				progress("round %d/%d: %s, %.0f req/s, %d connections, %s", round+1, b.o.rounds, t.label, rate, b.o.conns, l.dur)
				if t.fixed == nil {
					t.fixed = map[float64]*result{}
				}
				if t.fixed[rate] == nil {
					t.fixed[rate] = &result{}
				}
				l.url = t.url
				var wait func()
				if round == 0 && rate == b.o.rates[0] {
					wait = b.profile(ctx, t, l.dur)
				}
				err := b.runOne(ctx, fmt.Sprintf("fixed%g-%s-%d", rate, slug(t.label), round+1), t, l, t.fixed[rate], fixedKey(rate))
				if wait != nil {
					wait()
				}
				if err != nil {
					return err
				}
			}
		}
	}

	b.loadMid = loadAverage()
	for _, conns := range b.o.maxConns {
		l := load{qps: 0, conns: conns, dur: b.o.maxDur / time.Duration(b.o.rounds)}
		for round := range b.o.rounds {
			for _, t := range b.rotation(round) {
				progress("round %d/%d: %s, closed loop, %d connections, %s", round+1, b.o.rounds, t.label, conns, l.dur)
				if t.max == nil {
					t.max = map[int]*result{}
				}
				if t.max[conns] == nil {
					t.max[conns] = &result{}
				}
				l.url = t.url
				if err := b.runOne(ctx, fmt.Sprintf("max%d-%s-%d", conns, slug(t.label), round+1), t, l, t.max[conns], maxKey(conns)); err != nil {
					return err
				}
			}
		}
	}
	return b.finish()
}

// profile starts taking a CPU profile of each of t's sidecars, when
// -cpuprofile is set, for most of dur (the round about to start), written
// to <scenario>-<proxy>.pprof in the -cpuprofile folder. The returned
// function waits for them (nil when there is nothing to take).
func (b *bench) profile(ctx context.Context, t *target, dur time.Duration) func() {
	if b.o.profileDir == "" || t.kind != kindTrellis {
		return nil
	}
	secs := max(1, int((dur - time.Second).Seconds()))
	var wg sync.WaitGroup
	problems := make([]string, len(t.proxies))
	for i, p := range t.proxies {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.sidecarAdmin[p], secs)
		path := filepath.Join(b.o.profileDir, b.scenario+"-"+slug(p.name)+".pprof")
		wg.Go(func() {
			if err := fetchTo(ctx, url, path, time.Duration(secs+30)*time.Second); err != nil {
				problems[i] = fmt.Sprintf("No CPU profile of %s: %v.", p.name, err)
				return
			}
			progress("CPU profile of %s: %s", p.name, path)
		})
	}
	return func() {
		wg.Wait()
		for _, m := range problems {
			if m != "" {
				b.notes = append(b.notes, m)
			}
		}
	}
}

// fetchTo GETs url into the file path.
func fetchTo(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// finish reads the proxies' peak RSS and the load average at the end.
func (b *bench) finish() error {
	for _, t := range b.targets {
		for _, p := range t.proxies {
			hwm, err := procstat.StatusKiB(p.pid(), "VmHWM")
			if err != nil {
				return err
			}
			p.peakRSS = hwm
		}
	}
	b.loadAfter = loadAverage()
	return nil
}

// rotation is the order the paths take turns in during a round: shifted by
// one each round, so none is always first (or always right after a
// particular other one).
func (b *bench) rotation(round int) []*target {
	n := len(b.targets)
	out := make([]*target, n)
	for i := range n {
		out[i] = b.targets[(i+round)%n]
	}
	return out
}

// measureIdle reads every proxy's RSS and its CPU use over o.idle while
// nothing is sent (each has served one request since it started).
func (b *bench) measureIdle(ctx context.Context) error {
	progress("idle proxies: CPU over %s, RSS", b.o.idle)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second): // let start-up settle
	}
	var all []*proxy
	for _, t := range b.targets {
		all = append(all, t.proxies...)
	}
	before := make([]float64, len(all))
	for i, p := range all {
		var err error
		if before[i], err = procstat.CPUSeconds(p.pid()); err != nil {
			return err
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.o.idle):
	}
	elapsed := time.Since(start).Seconds()
	for i, p := range all {
		after, err := procstat.CPUSeconds(p.pid())
		if err != nil {
			return err
		}
		p.idleCPU = (after - before[i]) / elapsed
		if p.idleRSS, err = procstat.StatusKiB(p.pid(), "VmRSS"); err != nil {
			return err
		}
	}
	return nil
}

// runOne runs fortio once against t and adds the outcome to res. Unless
// key is "", it adds t's proxies' CPU time during the run to their cpu[key]
// and keeps their largest RSS in rss[key].
func (b *bench) runOne(ctx context.Context, tag string, t *target, l load, res *result, key string) error {
	var sample []*proxy
	if key != "" {
		sample = t.proxies
	}
	stop, err := b.sampleProxies(sample, key)
	if err != nil {
		return err
	}
	l.grpc = b.scenario == scenarioGRPC
	l.payload = b.o.bodySize
	r, err := runFortio(ctx, b.fortioBin, b.logDir(), tag, l)
	if serr := stop(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	minSize := b.o.bodySize
	if l.grpc {
		minSize = 0 // fortio records no sizes for gRPC
	}
	if probs := r.problems(minSize); len(probs) > 0 {
		b.failures = append(b.failures, fmt.Sprintf("%s (%s): %s", t.label, tag, strings.Join(probs, "; ")))
	}
	for _, p := range t.proxies {
		if p.exited() {
			return p.failure("exited during " + tag)
		}
	}
	res.hist.add(r.DurationHistogram)
	var one histogram
	one.add(r.DurationHistogram)
	res.rounds = append(res.rounds, round{p50: one.percentile(50), p99: one.percentile(99), rate: r.ActualQPS})
	res.requests += r.DurationHistogram.Count
	res.seconds += float64(r.ActualDuration) / 1e9
	if l.qps > 0 && r.ActualQPS < 0.95*l.qps {
		res.slow = append(res.slow, r.ActualQPS)
	}
	return nil
}

// sampleProxies reads the proxies' CPU time now and their VmRSS every
// rssSampleEvery until the returned function is called, which adds each
// one's CPU time since to cpu[key] and keeps its largest RSS in rss[key].
func (b *bench) sampleProxies(ps []*proxy, key string) (func() error, error) {
	if len(ps) == 0 {
		return func() error { return nil }, nil
	}
	cpuBefore := make([]float64, len(ps))
	for i, p := range ps {
		var err error
		if cpuBefore[i], err = procstat.CPUSeconds(p.pid()); err != nil {
			return nil, err
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(rssSampleEvery)
		defer tick.Stop()
		for {
			for _, p := range ps {
				if kib, err := procstat.StatusKiB(p.pid(), "VmRSS"); err == nil && kib > p.rss[key] {
					p.rss[key] = kib
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() error {
		close(done)
		wg.Wait()
		for i, p := range ps {
			after, err := procstat.CPUSeconds(p.pid())
			if err != nil {
				return err
			}
			p.cpu[key] += after - cpuBefore[i]
		}
		return nil
	}, nil
}

// sidecarErrorStats are the counters of a trellis-dp that must stay at
// zero when every request made it through.
var sidecarErrorStats = []string{
	"downstream_rq_5xx", "upstream_rq_5xx", "upstream_rq_timeout",
	"upstream_cx_connect_fail", "upstream_cx_connect_timeout", "upstream_cx_none_healthy",
	"no_route", "no_cluster",
}

// sidecarStats reads every trellis-dp's /stats counters.
func (b *bench) sidecarStats() (map[*proxy]map[string]uint64, error) {
	all := map[*proxy]map[string]uint64{}
	for p, addr := range b.sidecarAdmin {
		resp, err := b.hc.Get("http://" + addr + "/stats")
		if err != nil {
			return nil, fmt.Errorf("%s: reading /stats: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("%s: /stats answered %s", p.name, resp.Status)
		}
		counts := map[string]uint64{}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			name, value, ok := strings.Cut(sc.Text(), ": ")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(value, 10, 64); err == nil {
				counts[name] = n
			}
		}
		err = sc.Err()
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: reading /stats: %w", p.name, err)
		}
		all[p] = counts
	}
	return all, nil
}

// sum adds up the counters whose names start with prefix and end with
// suffix.
func sum(counts map[string]uint64, prefix, suffix string) uint64 {
	var n uint64
	for name, v := range counts {
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) {
			n += v
		}
	}
	return n
}

// checkSidecarStats compares the sidecars' counters with their values
// before the measurements (start-up may count some errors: a request sent
// before the endpoints arrived finds no healthy upstream). It records a
// failure for every error counter (sidecarErrorStats) that went up, and
// checks that the mTLS pair's traffic was TLS: its server sidecar counts
// TLS handshakes on its listeners and requests (or connections) allowed by
// RBAC during the measurements, while the plaintext pair's counts no
// handshake.
func (b *bench) checkSidecarStats() {
	after, err := b.sidecarStats()
	if err != nil {
		b.failures = append(b.failures, err.Error())
		return
	}
	var names []string
	rose := map[string]uint64{}
	for p, counts := range after {
		for name, v := range counts {
			for _, s := range sidecarErrorStats {
				if strings.HasSuffix(name, "."+s) && v > b.statsBefore[p][name] {
					k := p.name + ": " + name
					names = append(names, k)
					rose[k] = v - b.statsBefore[p][name]
				}
			}
		}
	}
	sort.Strings(names)
	for _, k := range names {
		b.failures = append(b.failures, fmt.Sprintf("%s went up by %d during the measurements", k, rose[k]))
	}

	for _, t := range b.targets {
		if t.kind != kindTrellis {
			continue
		}
		client, server := t.proxies[0], t.proxies[1]
		inbound := sum(after[server], "listener.", ".ssl.handshake")
		outbound := sum(after[client], "cluster.", ".ssl.handshake")
		allowed := sum(after[server], "", ".rbac.allowed") - sum(b.statsBefore[server], "", ".rbac.allowed")
		if !t.mtls {
			if inbound > 0 || outbound > 0 {
				b.failures = append(b.failures, fmt.Sprintf("%s: %d TLS handshakes on the server sidecar's listeners, %d on the client sidecar's clusters, though its mesh has no mTLS", t.label, inbound, outbound))
			}
			continue
		}
		t.tlsCheck = fmt.Sprintf("%s: the server sidecar counted %d TLS handshakes on its listeners (listener.*.ssl.handshake, since it started) and %d requests allowed by RBAC during the measurements (*.rbac.allowed); the client sidecar %d handshakes on its clusters", t.label, inbound, allowed, outbound)
		if inbound == 0 || allowed == 0 {
			b.failures = append(b.failures, "not mTLS: "+t.tlsCheck)
		}
	}
}

// slug makes a label usable in a file name: lower case, every run of
// other characters than letters and digits turned into one "-".
func slug(s string) string {
	var out []byte
	dash := false
	for _, c := range []byte(strings.ToLower(s)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && len(out) > 0 {
				out = append(out, '-')
			}
			out = append(out, c)
			dash = false
		} else {
			dash = true
		}
	}
	return string(out)
}
