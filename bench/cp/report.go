package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report prints the results as one table, a column per size; sizes other
// than the baseline show their ratio to it for the main figures.
func report(w io.Writer, o options, results []*result, start time.Time, loadBefore string) {
	fmt.Fprintf(w, "Control-plane xDS benchmark, %s (%s)\n", start.Format("2006-01-02 15:04 MST"), time.Since(start).Round(time.Second))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s; load average before %s, after %s\n", numCPU(), cpuModel(), runtime.Version(), loadBefore, loadAverage())
	conns := "one gRPC connection per proxy"
	if o.conns > 0 {
		conns = fmt.Sprintf("%d gRPC connections shared by the streams", o.conns)
	}
	fmt.Fprintf(w, "%s xDS, %s store, mTLS STRICT (builtin CA); proxies over %d services, one HTTP inbound and %d outbounds each; %s\n",
		o.mode, o.store, o.services, min(o.outbounds, o.services), conns)
	var base *result
	for _, r := range results {
		if r.n == o.baseline {
			base = r
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, cell func(r *result) string) {
		cells := []string{fmt.Sprintf("%-42s", label)}
		for _, r := range results {
			cells = append(cells, cell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	// withRatio adds "(x.xx×)" to a figure of a non-baseline column.
	withRatio := func(v func(r *result) (float64, bool), format string) func(r *result) string {
		return func(r *result) string {
			x, ok := v(r)
			if !ok {
				return "-"
			}
			s := fmt.Sprintf(format, x)
			if base != nil && r != base {
				if b, ok := v(base); ok && b > 0 {
					s += fmt.Sprintf(" (%.2fx)", x/b)
				}
			}
			return s
		}
	}
	row("", func(r *result) string {
		if r == base {
			return fmt.Sprintf("N=%d (baseline)", r.n)
		}
		return fmt.Sprintf("N=%d", r.n)
	})
	row("proxies configured", func(r *result) string { return fmt.Sprintf("%d/%d", r.configured, r.n) })
	row("first config, all proxies (s)", withRatio(func(r *result) (float64, bool) {
		return r.connect.Seconds(), r.configured == r.n
	}, "%.2f"))
	row("first response per proxy p50/p99/max (ms)", func(r *result) string { return pcts(r.firstResponse) })
	row("first config per proxy p50/p99/max (ms)", func(r *result) string { return pcts(r.firstConfig) })
	row("  p99 (ms)", withRatio(func(r *result) (float64, bool) {
		return ms(percentile(r.firstConfig, 0.99)), len(r.firstConfig) > 0
	}, "%.0f"))
	row("responses per proxy until then", func(r *result) string {
		return fmt.Sprintf("%.1f", float64(r.connectResponses)/float64(r.n))
	})
	row("CP CPU s while connecting", withRatio(func(r *result) (float64, bool) { return r.cpuConnect, r.configured > 0 }, "%.1f"))
	row("CP RSS empty/connected/peak (MiB)", func(r *result) string {
		return fmt.Sprintf("%s/%s/%s", mib(r.rssEmpty), mib(r.rssConnected), mib(r.hwm))
	})
	row("CP MB per connected proxy", withRatio(func(r *result) (float64, bool) {
		return float64(r.rssConnected-r.rssEmpty) * 1024 / 1e6 / float64(r.n), r.rssConnected > 0
	}, "%.3f"))
	row("CP heap in use after GC (MiB)", func(r *result) string {
		if r.heapInuse == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(r.heapInuse)/(1<<20))
	})
	row("CP idle CPU (cores)", func(r *result) string {
		s := fmt.Sprintf("%.3f", r.idleCPU)
		if !r.settled && r.rssConnected > 0 {
			s += " (never quiet)"
		}
		return s
	})
	for _, name := range changeNames(results) {
		get := func(r *result) *change {
			for i := range r.changes {
				if r.changes[i].name == name {
					return &r.changes[i]
				}
			}
			return nil
		}
		title, _, _ := strings.Cut(name, "#")
		if rounds := strings.Count(strings.Join(changeNames(results), "\n"), title+"#"); rounds > 1 {
			title = strings.Replace(name, "#", ", round ", 1)
		}
		row(title, func(r *result) string { return "" })
		row("  proxies affected / ACKed", func(r *result) string {
			if c := get(r); c != nil {
				s := fmt.Sprintf("%d/%d", c.affected, len(c.conv))
				if c.timedOut {
					s += " (timed out)"
				}
				return s
			}
			return "-"
		})
		row("  ACKed after p50/p99/max (ms)", func(r *result) string {
			if c := get(r); c != nil {
				return pcts(c.conv)
			}
			return "-"
		})
		row("  p99 (ms)", withRatio(func(r *result) (float64, bool) {
			c := get(r)
			return ms(percentile(c.conv, 0.99)), c != nil && len(c.conv) > 0
		}, "%.0f"))
		row(fmt.Sprintf("  CP CPU s to last ACK / +%s", o.tail), func(r *result) string {
			if c := get(r); c != nil {
				return fmt.Sprintf("%.2f/%.2f", c.cpu, c.tail)
			}
			return "-"
		})
		row("  bench client CPU s to last ACK", func(r *result) string {
			if c := get(r); c != nil {
				return fmt.Sprintf("%.2f", c.clientCPU)
			}
			return "-"
		})
	}
	row("bench client CPU s (whole run)", func(r *result) string { return fmt.Sprintf("%.1f", r.clientCPU) })
	tw.Flush()
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(w, "N=%d: %v\n", r.n, r.err)
		}
		if r.failures > 0 {
			fmt.Fprintf(w, "N=%d: %d proxy streams failed\n", r.n, r.failures)
		}
	}
	fmt.Fprintln(w, "(x): ratio to the baseline column, same run. CPU s are the control plane's user+system seconds from /proc; MB per proxy is (RSS connected - RSS empty) / N.")
}

func changeNames(results []*result) []string {
	var out []string
	for _, r := range results {
		for _, c := range r.changes {
			if !slices.Contains(out, c.name) {
				out = append(out, c.name)
			}
		}
	}
	return out
}

// percentile returns the q-quantile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func pcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f/%.0f", ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99)), ms(maxDuration(ds)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(kib)/1024)
}

// slug turns a change's name into a file-name part.
func slug(s string) string {
	_, round, _ := strings.Cut(s, "#")
	s, _, _ = strings.Cut(s, " (")
	s += "-" + round
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
