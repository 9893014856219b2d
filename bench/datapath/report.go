package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// percentiles are the latency columns, in percent.
var percentiles = []float64{50, 90, 99, 99.9}

// title names what the scenario sends.
func (b *bench) title() string {
	switch b.scenario {
	case scenarioGRPC:
		return fmt.Sprintf("gRPC unary pings (fortio's ping service, %s payload each way, HTTP/2)", sizeLabel(b.o.bodySize))
	case scenarioTCP:
		return "single-connection TCP throughput"
	}
	return sizeLabel(b.o.bodySize) + " HTTP/1.1 GETs"
}

// report prints the figures as Markdown.
func (b *bench) report(w io.Writer) {
	direct := b.targets[0]
	pairs := b.targets[1:]
	var haproxy bool
	for _, t := range pairs {
		haproxy = haproxy || t.kind == kindHAProxy
	}

	fmt.Fprintf(w, "## Data path: %s on loopback\n\n", b.title())
	fmt.Fprintf(w, "- Machine: %d CPUs (nproc), %s, %s/%s, %s; trellis-cp and trellis-dp %s", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), b.binaries)
	if b.scenario != scenarioTCP {
		fmt.Fprintf(w, "; fortio %s", orUnknown(b.fortioVersion))
	}
	if haproxy {
		fmt.Fprintf(w, "; %s", b.haproxyVersion)
	}
	mid := "after the fixed-rate rounds"
	if b.scenario == scenarioTCP {
		mid = "after the throughput runs"
	}
	fmt.Fprintf(w, ".\n- Load average (1, 5, 15 min): %s at the start, %s %s, %s at the end "+
		"(other work shares the machine).\n", b.loadBefore, b.loadMid, mid, b.loadAfter)
	fmt.Fprintf(w, "- The scenario took %s (start-up and measurements, until this report).\n", b.elapsed())
	switch b.scenario {
	case scenarioGRPC:
		fmt.Fprint(w, "- Backend: fortio's gRPC ping server (its own process). Trellis: the service's protocol is grpc (kuma.io/protocol: grpc), so both sidecars proxy HTTP/2.")
		if haproxy {
			fmt.Fprint(w, " HAProxy: HTTP mode, HTTP/2 on both sides of each HAProxy (proto h2).")
		}
		fmt.Fprintln(w)
	case scenarioTCP:
		fmt.Fprint(w, "- Trellis: the service's protocol is tcp (kuma.io/protocol: tcp), so both sidecars proxy bytes.")
		if haproxy {
			fmt.Fprint(w, " HAProxy: mode tcp.")
		}
		fmt.Fprintln(w)
	}
	for _, mtls := range b.o.variants() {
		if !mtls {
			fmt.Fprint(w, "- Plaintext pairs: the Trellis pair in mesh default, which has no mTLS")
			if haproxy {
				fmt.Fprint(w, "; the HAProxy pair without TLS")
			}
			fmt.Fprintln(w, ".")
			continue
		}
		fmt.Fprintf(w, "- mTLS pairs: the Trellis pair in mesh %s, mTLS STRICT with a builtin CA (TLS 1.3, ECDSA P-256 workload certificates) and an allow-all MeshTrafficPermission", mtlsMesh)
		if haproxy {
			fmt.Fprint(w, "; the HAProxy pair with TLS 1.3 and client certificates between its two HAProxies (a test CA and two ECDSA P-256 certificates, verify required on both sides, verifyhost on the client side)")
		}
		fmt.Fprintln(w, "; the server side of either refuses plaintext.")
	}
	for _, t := range pairs {
		if t.tlsCheck != "" {
			fmt.Fprintf(w, "- %s.\n", t.tlsCheck)
		}
	}
	for _, n := range b.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintln(w)

	if b.scenario == scenarioTCP {
		b.reportTCP(w)
		fmt.Fprintln(w, "| proxy | RSS idle, MiB | RSS during the throughput runs (max), MiB | peak RSS (VmHWM), MiB |")
		fmt.Fprintln(w, "|---|--:|--:|--:|")
		for _, t := range pairs {
			for _, p := range t.proxies {
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", p.name, mib(p.idleRSS), mib(p.rss[tcpKey]), mib(p.peakRSS))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Command: `%s`\n\n", b.command())
		return
	}
	b.summary(w)

	added := func(t *target, rate, p float64) float64 {
		return t.fixed[rate].hist.percentile(p) - direct.fixed[rate].hist.percentile(p)
	}
	for _, rate := range b.o.rates {
		fmt.Fprintf(w, "### Latency at %s req/s, %d connections (%d × %s per path, paths taking turns)\n\n",
			thousands(rate), b.o.conns, b.o.rounds, b.o.duration/time.Duration(b.o.rounds))
		fmt.Fprintln(w, "| path | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
		for _, t := range b.targets {
			f := t.fixed[rate]
			row := []string{t.label, fmt.Sprintf("%.0f", f.rate())}
			for _, p := range percentiles {
				v := f.hist.percentile(p)
				cell := ms(v)
				if t != direct {
					cell += " (" + ratio(v, direct.fixed[rate].hist.percentile(p)) + ")"
				}
				row = append(row, cell)
			}
			row = append(row, ms(f.hist.max))
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		fmt.Fprintln(w)

		fmt.Fprintln(w, "Added latency over direct (path's percentile − direct's percentile), ms:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| path | p50 | p90 | p99 | p99.9 |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
		for _, t := range pairs {
			row := []string{t.label}
			for _, p := range percentiles {
				row = append(row, fmt.Sprintf("%+.3f", added(t, rate, p)*1000))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		for _, mtls := range b.o.variants() {
			trellis, ha := b.pair(kindTrellis, mtls), b.pair(kindHAProxy, mtls)
			if trellis == nil || ha == nil {
				continue
			}
			row := []string{"Trellis ÷ HAProxy" + variantSuffix(mtls)}
			for _, p := range percentiles {
				row = append(row, ratio(added(trellis, rate, p), added(ha, rate, p)))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "A negative added latency or a ratio shown as – means the machine's noise at that percentile outweighs the proxies' cost.")
		fmt.Fprintln(w)
		if b.o.rounds > 1 {
			fmt.Fprintln(w, "The rounds one by one (noise check), p50 / p99 ms:")
			fmt.Fprintln(w)
			head, rule := []string{"path"}, []string{"---"}
			for i := range b.o.rounds {
				head = append(head, fmt.Sprintf("round %d", i+1))
				rule = append(rule, "--:")
			}
			fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
			fmt.Fprintln(w, "|"+strings.Join(rule, "|")+"|")
			for _, t := range b.targets {
				row := []string{t.label}
				for _, r := range t.fixed[rate].rounds {
					row = append(row, ms(r.p50)+" / "+ms(r.p99))
				}
				fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
			}
			fmt.Fprintln(w)
		}
		for _, t := range b.targets {
			if f := t.fixed[rate]; len(f.slow) > 0 {
				fmt.Fprintf(w, "Note: %s fell short of %s req/s in %d round(s) (%s): it cannot keep up with that rate on this machine, and its latency includes the load generator falling behind.\n\n",
					t.label, thousands(rate), len(f.slow), joinRates(f.slow))
			}
		}
	}

	// Maximum rate.
	if len(b.o.maxConns) > 0 {
		fmt.Fprintf(w, "### Maximum rate, closed loop (%d × %s per path and connection count)\n\n", b.o.rounds, b.o.maxDur/time.Duration(b.o.rounds))
		head, rule := []string{"path"}, []string{"---"}
		for _, c := range b.o.maxConns {
			head = append(head, fmt.Sprintf("%d connections, req/s", c), fmt.Sprintf("%d connections, proxies' vCPU", c), fmt.Sprintf("%d connections, req/s per proxy core", c))
			rule = append(rule, "--:", "--:", "--:")
		}
		fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Join(rule, "|")+"|")
		for _, t := range b.targets {
			row := []string{t.label}
			for _, c := range b.o.maxConns {
				r := t.max[c].rate()
				row = append(row, fmt.Sprintf("%.0f (%s)", r, ratio(r, direct.max[c].rate())))
				if len(t.proxies) == 0 {
					row = append(row, "–", "–")
					continue
				}
				row = append(row, fmt.Sprintf("%.2f", pairCPU(t, maxKey(c))/t.max[c].seconds), thousands(perCore(t, c)))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "proxies' vCPU = both proxies' CPU seconds (utime+stime) during the closed-loop runs ÷ their duration; req/s per proxy core = requests served ÷ those CPU seconds: the rate one core's worth of proxy CPU sustains, split over the two hops (a single proxy doing one hop would do about twice that). The load generator and the backend share the same CPUs.")
		fmt.Fprintln(w)
		if b.o.rounds > 1 {
			fmt.Fprintln(w, "The rounds one by one (noise check), req/s:")
			fmt.Fprintln(w)
			for _, t := range b.targets {
				var parts []string
				for _, c := range b.o.maxConns {
					var rates []string
					for _, r := range t.max[c].rounds {
						rates = append(rates, fmt.Sprintf("%.0f", r.rate))
					}
					parts = append(parts, fmt.Sprintf("%d connections %s", c, strings.Join(rates, " / ")))
				}
				fmt.Fprintf(w, "- %s: %s\n", t.label, strings.Join(parts, "; "))
			}
			fmt.Fprintln(w)
		}
	}

	// The proxies.
	fmt.Fprintln(w, "### Proxies: memory and CPU")
	fmt.Fprintln(w)
	head, rule := []string{"proxy", "RSS idle, MiB"}, []string{"---", "--:"}
	for _, rate := range b.o.rates {
		head = append(head, fmt.Sprintf("RSS at %s req/s (max), MiB", thousands(rate)))
		rule = append(rule, "--:")
	}
	head, rule = append(head, "peak RSS (VmHWM), MiB", "CPU idle, vCPU"), append(rule, "--:", "--:")
	for _, rate := range b.o.rates {
		head = append(head, fmt.Sprintf("vCPU per 1,000 req/s at %s req/s", thousands(rate)))
		rule = append(rule, "--:")
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Join(rule, "|")+"|")
	for _, t := range pairs {
		for _, p := range t.proxies {
			row := []string{p.name, mib(p.idleRSS)}
			for _, rate := range b.o.rates {
				row = append(row, mib(p.rss[fixedKey(rate)]))
			}
			row = append(row, mib(p.peakRSS), fmt.Sprintf("%.3f", p.idleCPU))
			for _, rate := range b.o.rates {
				row = append(row, fmt.Sprintf("%.3f", perThousand(p, t, rate)))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
	}
	for _, mtls := range b.o.variants() {
		trellis, ha := b.pair(kindTrellis, mtls), b.pair(kindHAProxy, mtls)
		if trellis == nil || ha == nil {
			continue
		}
		fs := []func(*proxy, *target) float64{func(p *proxy, _ *target) float64 { return float64(p.idleRSS) }}
		for _, rate := range b.o.rates {
			fs = append(fs, func(p *proxy, _ *target) float64 { return float64(p.rss[fixedKey(rate)]) })
		}
		fs = append(fs,
			func(p *proxy, _ *target) float64 { return float64(p.peakRSS) },
			func(p *proxy, _ *target) float64 { return p.idleCPU })
		for _, rate := range b.o.rates {
			fs = append(fs, func(p *proxy, t *target) float64 { return perThousand(p, t, rate) })
		}
		cells := []string{"Trellis ÷ HAProxy" + variantSuffix(mtls) + " (means of each pair)"}
		for _, f := range fs {
			cells = append(cells, ratio(mean(trellis, f), mean(ha, f)))
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Peak RSS covers the whole scenario, closed-loop runs included. vCPU per 1,000 req/s = the proxy's CPU seconds (utime+stime) during the fixed-rate rounds × 1,000 / requests served, idle use included; CPU times are counted in 10 ms ticks, so idle CPU below 0.002 vCPU shows as 0.000. DESIGN.md §9 budget per proxy: ≤ 20 MB RSS idle, ≤ 30 MB at 1,000 req/s, ≤ 0.10 vCPU per 1,000 req/s.\n\n")
	fmt.Fprintf(w, "Command: `%s`\n\n", b.command())
}

// summary prints the pairs side by side: added latency, maximum rate,
// CPU and memory, each proxy's figures as "client, server".
func (b *bench) summary(w io.Writer) {
	pairs := b.targets[1:]
	if len(pairs) == 0 {
		return
	}
	direct := b.targets[0]
	fmt.Fprintln(w, "### Summary")
	fmt.Fprintln(w)
	head, rule := []string{""}, []string{"---"}
	for _, t := range pairs {
		head = append(head, t.label)
		rule = append(rule, "--:")
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Join(rule, "|")+"|")
	row := func(name string, cell func(t *target) string) {
		cells := []string{name}
		for _, t := range pairs {
			cells = append(cells, cell(t))
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	for _, rate := range b.o.rates {
		var ds []string
		for _, p := range percentiles {
			ds = append(ds, ms(direct.fixed[rate].hist.percentile(p)))
		}
		row(fmt.Sprintf("added latency at %s req/s, p50 / p90 / p99 / p99.9 ms (direct: %s)", thousands(rate), strings.Join(ds, " / ")), func(t *target) string {
			var parts []string
			for _, p := range percentiles {
				parts = append(parts, fmt.Sprintf("%+.2f", (t.fixed[rate].hist.percentile(p)-direct.fixed[rate].hist.percentile(p))*1000))
			}
			s := strings.Join(parts, " / ")
			if len(t.fixed[rate].slow) > 0 {
				s += fmt.Sprintf(" (fell short: %.0f req/s)", t.fixed[rate].rate())
			}
			return s
		})
	}
	for _, c := range b.o.maxConns {
		row(fmt.Sprintf("max req/s, %d connections (direct: %s)", c, thousands(direct.max[c].rate())), func(t *target) string {
			return thousands(t.max[c].rate())
		})
		row(fmt.Sprintf("req/s per proxy core, %d connections", c), func(t *target) string {
			return thousands(perCore(t, c))
		})
	}
	each := func(f func(p *proxy) string) func(t *target) string {
		return func(t *target) string {
			var parts []string
			for _, p := range t.proxies {
				parts = append(parts, f(p))
			}
			return strings.Join(parts, ", ")
		}
	}
	for _, rate := range b.o.rates {
		row(fmt.Sprintf("vCPU per 1,000 req/s at %s req/s (client, server)", thousands(rate)), func(t *target) string {
			return each(func(p *proxy) string { return fmt.Sprintf("%.3f", perThousand(p, t, rate)) })(t)
		})
	}
	row("RSS idle, MiB (client, server)", each(func(p *proxy) string { return mib(p.idleRSS) }))
	for _, rate := range b.o.rates {
		row(fmt.Sprintf("RSS at %s req/s, MiB (client, server)", thousands(rate)), each(func(p *proxy) string { return mib(p.rss[fixedKey(rate)]) }))
	}
	row("peak RSS, MiB (client, server)", each(func(p *proxy) string { return mib(p.peakRSS) }))
	fmt.Fprintln(w)
}

// elapsed is the scenario's time so far, rounded to the second.
func (b *bench) elapsed() time.Duration {
	return time.Since(b.start).Round(time.Second)
}

// pairCPU is the CPU seconds both of t's proxies spent in measurement key.
func pairCPU(t *target, key string) float64 {
	var s float64
	for _, p := range t.proxies {
		s += p.cpu[key]
	}
	return s
}

// perCore is the closed-loop rate at conns connections per core of CPU
// the pair's proxies used: requests ÷ their CPU seconds.
func perCore(t *target, conns int) float64 {
	cpu := pairCPU(t, maxKey(conns))
	if cpu == 0 || t.max[conns] == nil {
		return 0
	}
	return float64(t.max[conns].requests) / cpu
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(raw)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// pair is the measured pair of a kind and transport, or nil.
func (b *bench) pair(kind string, mtls bool) *target {
	for _, t := range b.targets {
		if t.kind == kind && t.mtls == mtls {
			return t
		}
	}
	return nil
}

// variantSuffix is appended to a label for the mTLS variant, as in the
// pairs' labels ("Trellis pair, mTLS").
func variantSuffix(mtls bool) string {
	if mtls {
		return ", mTLS"
	}
	return ""
}

// mean is the mean of f over a pair's proxies.
func mean(t *target, f func(*proxy, *target) float64) float64 {
	var s float64
	for _, p := range t.proxies {
		s += f(p, t)
	}
	return s / float64(len(t.proxies))
}

// perThousand is p's CPU per 1,000 req/s over the fixed-rate rounds at
// rate.
func perThousand(p *proxy, t *target, rate float64) float64 {
	f := t.fixed[rate]
	if f == nil || f.requests == 0 {
		return 0
	}
	return p.cpu[fixedKey(rate)] * 1000 / float64(f.requests)
}

// command is how this run was started.
func (b *bench) command() string {
	parts := []string{"go run ./bench/datapath"}
	for _, a := range b.o.commandArg {
		if a == "" || strings.ContainsAny(a, " \t'\"$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func ms(seconds float64) string { return fmt.Sprintf("%.3f", seconds*1000) }

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

// ratio formats a/b as "1.23x", or "–" when it means nothing (a
// negative or zero b, a negative a).
func ratio(a, b float64) string {
	if b <= 0 || a < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// thousands formats a whole number with a comma every three digits.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func sizeLabel(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d-byte", n)
}

func joinRates(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.0f req/s", r)
	}
	return strings.Join(s, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
