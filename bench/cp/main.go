// Command cp is the control plane's xDS load benchmark: it starts a real
// trellis-cp (memory store, dataplane tokens off), connects N simulated
// proxies over real gRPC ADS streams with TLS on loopback (state of the
// world or delta; each presents its Dataplane in the node metadata,
// subscribes as trellis-dp does and ACKs every response), and measures:
// the time until every proxy has its first full config; the time until
// every affected proxy ACKed (a) a mesh-wide MeshTrafficPermission change
// (the mesh runs mTLS, so every inbound's RBAC rules change) and (b) one
// endpoint added (a new Dataplane of one service); the control plane's
// RSS, CPU seconds per change, MB per connected proxy and idle CPU. A
// baseline size (1,000 by default) runs first, against its own control
// plane, so the larger sizes are read as ratios of the same run.
//
//	go run ./bench/cp -n 10000 -services 100 -mode delta
//
// It never runs in CI; its test runs it once with 20 proxies.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	sizes           []int
	baseline        int
	services        int
	outbounds       int
	mode            string
	conns           int
	dialConcurrency int
	rounds          int
	store           string
	cpBin           string
	timeout         time.Duration
	idle            time.Duration
	tail            time.Duration
	profileDir      string
	profileConnect  time.Duration
	profileChange   time.Duration
	workDir         string
	keep            bool
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, o, os.Stdout))
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("cp", flag.ContinueOnError)
	n := fs.String("n", "1000", "proxies to connect; a comma-separated list runs each size in turn")
	fs.IntVar(&o.baseline, "baseline", 1000, "size run first as the baseline of the ratios (0: none; skipped when it is in -n)")
	fs.IntVar(&o.services, "services", 100, "services the proxies are spread over (proxy i serves svc-(i mod services))")
	fs.IntVar(&o.outbounds, "outbounds", 5, "outbounds per proxy: the services after its own")
	fs.StringVar(&o.mode, "mode", "delta", "xDS protocol: sotw or delta")
	fs.IntVar(&o.conns, "conns", 0, "gRPC connections the streams share (0: one per proxy, as real proxies)")
	fs.IntVar(&o.dialConcurrency, "dial-concurrency", 64, "proxies opening their connection at once")
	fs.IntVar(&o.rounds, "rounds", 1, "times each change is measured")
	fs.StringVar(&o.store, "store", "memory", "trellis-cp store: memory or sqlite")
	fs.StringVar(&o.cpBin, "cp-bin", "", "trellis-cp binary (empty: built from ./cmd/trellis-cp; \"in-process\": run it in this process, for tests)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest wait for a phase (first config, one change)")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "how long idle CPU is measured")
	fs.DurationVar(&o.tail, "tail", 2*time.Second, "how long after a change's last ACK its CPU is still counted (insight writes)")
	fs.StringVar(&o.profileDir, "profile", "", "folder for CPU and heap profiles of trellis-cp (turns its diagnostics server on)")
	fs.DurationVar(&o.profileConnect, "profile-connect", 30*time.Second, "length of the CPU profile taken while proxies connect")
	fs.DurationVar(&o.profileChange, "profile-change", 8*time.Second, "length of the CPU profile taken for each change")
	fs.StringVar(&o.workDir, "dir", "", "folder for the control plane's data and log (default: a temporary folder)")
	fs.BoolVar(&o.keep, "keep", false, "keep the control plane's data and log")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*n, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			return o, fmt.Errorf("-n: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, v)
	}
	switch {
	case o.mode != "sotw" && o.mode != "delta":
		return o, fmt.Errorf("-mode must be sotw or delta, not %q", o.mode)
	case o.services <= 0 || o.outbounds < 0 || o.rounds < 0:
		return o, fmt.Errorf("-services must be positive, -outbounds and -rounds not negative")
	case o.rounds > 200:
		return o, fmt.Errorf("-rounds: at most 200")
	}
	return o, nil
}

// sizes returns the sizes to run: the baseline first unless listed.
func (o options) runSizes() []int {
	out := append([]int(nil), o.sizes...)
	if o.baseline > 0 && !contains(out, o.baseline) {
		out = append([]int{o.baseline}, out...)
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func run(ctx context.Context, o options, out io.Writer) int {
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := checkFiles(o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch o.cpBin {
	case "in-process":
		o.cpBin = ""
	case "":
		dir, err := os.MkdirTemp("", "cp-bench-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		o.cpBin = filepath.Join(dir, "trellis-cp")
		progress("building trellis-cp")
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "grpcnotrace", "-o", o.cpBin, "./cmd/trellis-cp")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building trellis-cp (run from the repository root): %v\n", err)
			return 1
		}
	}
	start := time.Now()
	loadBefore := loadAverage()
	var results []*result
	for _, n := range o.runSizes() {
		r := runOne(ctx, o, n)
		results = append(results, r)
		if r.err != nil {
			progress("N=%d: %v", n, r.err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	report(out, o, results, start, loadBefore)
	for _, r := range results {
		if r.err != nil || r.failures > 0 {
			return 1
		}
		for _, c := range r.changes {
			if c.timedOut {
				return 1
			}
		}
	}
	return 0
}

// checkFiles fails early when one connection per proxy would exceed the
// open-file limit (Go raises the soft limit to the hard one at start).
func checkFiles(o options) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	for _, n := range o.runSizes() {
		conns := n
		if o.conns > 0 && o.conns < n {
			conns = o.conns
		}
		if uint64(conns)+256 > lim.Cur {
			return fmt.Errorf("%d connections need more open files than the limit (%d): raise it (ulimit -n) or share connections with -conns", conns, lim.Cur)
		}
	}
	return nil
}

// startProfile takes a CPU profile of the control plane into the profile
// folder; the returned function waits for it to be written.
func (o options) startProfile(ctx context.Context, c *controlPlane, name string) func() {
	if o.profileDir == "" || c.diagAddr == "" {
		return func() {}
	}
	secs := o.profileChange
	if strings.HasPrefix(name, "cpu-connect") {
		secs = o.profileConnect
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		q := fmt.Sprintf("profile?seconds=%d", max(int(secs.Seconds()), 1))
		if err := c.profile(ctx, q, filepath.Join(o.profileDir, name)); err != nil {
			progress("profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

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

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

var numCPU = runtime.NumCPU
