package main

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// percentiles are the latency columns, in percent.
var percentiles = []float64{50, 90, 99, 99.9}

// report prints the figures as Markdown.
func (b *bench) report(w io.Writer) {
	direct := b.targets[0]
	pairs := b.targets[1:]
	var haproxy bool
	for _, t := range pairs {
		haproxy = haproxy || t.kind == kindHAProxy
	}

	fmt.Fprintf(w, "## Data path: %s HTTP/1.1 GETs on loopback\n\n", sizeLabel(b.o.bodySize))
	fmt.Fprintf(w, "- Machine: %d CPUs, %s/%s, %s; trellis-cp and trellis-dp %s; fortio %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), b.binaries, orUnknown(b.fortioVersion))
	if haproxy {
		fmt.Fprintf(w, "; %s", b.haproxyVersion)
	}
	fmt.Fprintf(w, ".\n- Load average (1, 5, 15 min): %s at the start, %s after the fixed-rate rounds, %s at the end "+
		"(other work shares the machine; the closed-loop runs themselves keep both CPUs busy).\n",
		b.loadBefore, b.loadMid, b.loadAfter)
	for _, mtls := range b.o.variants() {
		if !mtls {
			fmt.Fprint(w, "- Plaintext pairs: the Trellis pair in mesh default, which has no mTLS")
			if haproxy {
				fmt.Fprint(w, "; the HAProxy pair in plain HTTP")
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
	b.summary(w)

	// Latency at the fixed rate.
	fmt.Fprintf(w, "### Latency at %s req/s, %d connections (%d × %s per path, paths taking turns)\n\n",
		thousands(b.o.rate), b.o.conns, b.o.rounds, b.o.duration/time.Duration(b.o.rounds))
	fmt.Fprintln(w, "| path | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
	for _, t := range b.targets {
		row := []string{t.label, fmt.Sprintf("%.0f", t.fixed.rate())}
		for _, p := range percentiles {
			v := t.fixed.hist.percentile(p)
			cell := ms(v)
			if t != direct {
				cell += " (" + ratio(v, direct.fixed.hist.percentile(p)) + ")"
			}
			row = append(row, cell)
		}
		row = append(row, ms(t.fixed.hist.max))
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Added latency over direct (path's percentile − direct's percentile), ms:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | p50 | p90 | p99 | p99.9 |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
	added := func(t *target, p float64) float64 {
		return t.fixed.hist.percentile(p) - direct.fixed.hist.percentile(p)
	}
	for _, t := range pairs {
		row := []string{t.label}
		for _, p := range percentiles {
			row = append(row, fmt.Sprintf("%+.3f", added(t, p)*1000))
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
			row = append(row, ratio(added(trellis, p), added(ha, p)))
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
			for _, r := range t.fixed.rounds {
				row = append(row, ms(r.p50)+" / "+ms(r.p99))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		fmt.Fprintln(w)
	}
	for _, t := range b.targets {
		if len(t.fixed.slow) > 0 {
			fmt.Fprintf(w, "Note: %s fell short of %s req/s in %d round(s) (%s): its latency includes the load generator falling behind.\n\n",
				t.label, thousands(b.o.rate), len(t.fixed.slow), joinRates(t.fixed.slow))
		}
	}

	// Maximum rate.
	if len(b.o.maxConns) > 0 {
		fmt.Fprintf(w, "### Maximum rate, closed loop (%d × %s per path and connection count)\n\n", b.o.rounds, b.o.maxDur/time.Duration(b.o.rounds))
		head, rule := []string{"path"}, []string{"---"}
		for _, c := range b.o.maxConns {
			head = append(head, fmt.Sprintf("%d connections, req/s", c))
			rule = append(rule, "--:")
		}
		fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Join(rule, "|")+"|")
		for _, t := range b.targets {
			row := []string{t.label}
			for _, c := range b.o.maxConns {
				r := t.max[c].rate()
				row = append(row, fmt.Sprintf("%.0f (%s)", r, ratio(r, direct.max[c].rate())))
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
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
	fmt.Fprintf(w, "| proxy | RSS idle, MiB | RSS at %s req/s (max), MiB | peak RSS (VmHWM), MiB | CPU idle, vCPU | vCPU per 1,000 req/s |\n", thousands(b.o.rate))
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, t := range pairs {
		for _, p := range t.proxies {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.3f | %.3f |\n", p.name, mib(p.idleRSS), mib(p.loadRSS), mib(p.peakRSS),
				p.idleCPU, perThousand(p, t))
		}
	}
	for _, mtls := range b.o.variants() {
		trellis, ha := b.pair(kindTrellis, mtls), b.pair(kindHAProxy, mtls)
		if trellis == nil || ha == nil {
			continue
		}
		cells := []string{"Trellis ÷ HAProxy" + variantSuffix(mtls) + " (means of each pair)"}
		for _, f := range []func(*proxy) float64{
			func(p *proxy) float64 { return float64(p.idleRSS) },
			func(p *proxy) float64 { return float64(p.loadRSS) },
			func(p *proxy) float64 { return float64(p.peakRSS) },
			func(p *proxy) float64 { return p.idleCPU },
		} {
			cells = append(cells, ratio(mean(trellis, f), mean(ha, f)))
		}
		cells = append(cells, ratio(mean(trellis, func(p *proxy) float64 { return perThousand(p, trellis) }),
			mean(ha, func(p *proxy) float64 { return perThousand(p, ha) })))
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Peak RSS covers the whole run, closed-loop runs included. vCPU per 1,000 req/s = the proxy's CPU seconds (utime+stime) during the fixed-rate rounds × 1,000 / requests served, idle use included; CPU times are counted in 10 ms ticks, so idle CPU below 0.002 vCPU shows as 0.000. DESIGN.md §9 budget per proxy: ≤ 20 MB RSS idle, ≤ 30 MB at 1,000 req/s, ≤ 0.10 vCPU per 1,000 req/s.\n\n")
	fmt.Fprintf(w, "Command: `%s`\n", b.command())
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
	row(fmt.Sprintf("added latency at %s req/s, p50 / p90 / p99 ms", thousands(b.o.rate)), func(t *target) string {
		var parts []string
		for _, p := range []float64{50, 90, 99} {
			parts = append(parts, fmt.Sprintf("%+.2f", (t.fixed.hist.percentile(p)-direct.fixed.hist.percentile(p))*1000))
		}
		return strings.Join(parts, " / ")
	})
	for _, c := range b.o.maxConns {
		row(fmt.Sprintf("max req/s, %d connections (direct: %s)", c, thousands(direct.max[c].rate())), func(t *target) string {
			return thousands(t.max[c].rate())
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
	row("vCPU per 1,000 req/s (client, server)", func(t *target) string {
		return each(func(p *proxy) string { return fmt.Sprintf("%.3f", perThousand(p, t)) })(t)
	})
	row("RSS idle, MiB (client, server)", each(func(p *proxy) string { return mib(p.idleRSS) }))
	row(fmt.Sprintf("RSS at %s req/s, MiB (client, server)", thousands(b.o.rate)), each(func(p *proxy) string { return mib(p.loadRSS) }))
	row("peak RSS, MiB (client, server)", each(func(p *proxy) string { return mib(p.peakRSS) }))
	fmt.Fprintln(w)
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
func mean(t *target, f func(*proxy) float64) float64 {
	var s float64
	for _, p := range t.proxies {
		s += f(p)
	}
	return s / float64(len(t.proxies))
}

// perThousand is p's CPU per 1,000 req/s over the fixed-rate rounds.
func perThousand(p *proxy, t *target) float64 {
	if t.fixed.requests == 0 {
		return 0
	}
	return p.loadCPU * 1000 / float64(t.fixed.requests)
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
