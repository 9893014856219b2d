// Command datapath measures Trellis's data path on loopback against a
// direct baseline and, when HAProxy is installed, an HAProxy pair doing
// the same two hops, all in the same run so that the ratios mean
// something on a shared machine (DESIGN.md §9). Each pair is measured in
// plaintext and with mTLS between its two proxies (-mtls).
//
//	go run ./bench/datapath                 # the three scenarios, about 19 minutes
//	go run ./bench/datapath -scenarios grpc # one of them (http, grpc, tcp)
//	go run ./bench/datapath -bin bin        # with binaries from "make build"
//	go run ./bench/datapath -rev HEAD       # binaries of a commit, not of the working tree
//	go run ./bench/datapath -haproxy off    # without the HAProxy baseline
//	go run ./bench/datapath -mtls on        # the mTLS pairs only (-mtls off: plaintext only)
//
// Scenarios, each with its own control plane (trellis-cp, memory store),
// sidecars, HAProxies, backend and direct baseline, and each within 10
// minutes:
//
//   - http: 1 KiB HTTP/1.1 GETs to an in-process backend;
//   - grpc: fortio's gRPC ping with a 1 KiB payload echoed back, to
//     "fortio server"; the sidecars' service has protocol grpc, the
//     HAProxies speak HTTP/2 on both sides (proto h2);
//   - tcp: one connection pushing bytes to an in-process sink for a few
//     seconds (MB/s); the service has protocol tcp, HAProxy mode tcp.
//
// HTTP and gRPC are driven with fortio (run as a separate process): fixed
// rates (-qps, default 1,000 and 5,000 req/s over 16 connections) for
// latency percentiles (p50 to p99.9), proxy CPU and memory, then a closed
// loop at 16 and 64 connections for the maximum rate and the req/s per
// core of CPU the proxies used. Each measurement is split into rounds that
// visit the paths in turn, in a rotating order, so that a change in the
// machine's load hits every path alike. It prints Markdown tables.
//
// The plaintext Trellis pair is in mesh default, without mTLS; the mTLS
// pair is in a mesh of its own with mTLS STRICT (builtin CA, TLS 1.3,
// ECDSA P-256 workload certificates) and an allow-all
// MeshTrafficPermission. The mTLS HAProxy pair uses a test CA and two
// ECDSA P-256 certificates generated in the temporary folder, verified on
// both sides. When the control plane issues dataplane tokens (POST
// /tokens/dataplane), the sidecars get one each, as users' proxies do.
//
// It exits 1 when any request fails, a sidecar counts an error, the mTLS
// server sidecar counts no TLS handshake or no request allowed by RBAC
// (or the plaintext one counts a TLS handshake), or the server side of an
// mTLS hop lets plaintext through: correctness signals. It never judges
// the speed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	binDir     string
	rev        string
	fortio     string
	haproxy    string
	mtls       string
	scenarios  []string
	rates      []float64
	conns      int
	duration   time.Duration
	warmup     time.Duration
	rounds     int
	maxDur     time.Duration
	maxConns   []int
	idle       time.Duration
	bodySize   int
	tcpDur     time.Duration
	profileDir string
	keep       bool
	commandArg []string
}

func main() {
	o := options{commandArg: os.Args[1:]}
	flag.StringVar(&o.binDir, "bin", "", "folder with prebuilt trellis-cp and trellis-dp (default: build them from the working tree into a temporary folder)")
	flag.StringVar(&o.rev, "rev", "", "build trellis-cp and trellis-dp from this commit (git archive) instead of the working tree")
	flag.StringVar(&o.fortio, "fortio", "", "fortio binary (default: fortio on PATH, else $(go env GOPATH)/bin/fortio)")
	flag.StringVar(&o.haproxy, "haproxy", "", `haproxy binary for the baseline pair (default: haproxy on PATH or /usr/sbin/haproxy, skipped if absent); "off" skips it`)
	flag.StringVar(&o.mtls, "mtls", "both", `transport between the two proxies of each pair: "off" (plaintext), "on" (mTLS) or "both" (each pair both ways, in the same rounds)`)
	scenarios := flag.String("scenarios", "http,grpc,tcp", "scenarios to run, each with its own control plane, sidecars and baseline: http (1 KiB HTTP/1.1 GETs), grpc (fortio's gRPC ping, 1 KiB each way), tcp (single-connection throughput)")
	rates := flag.String("qps", "1000,5000", "fixed request rates for the latency and CPU measurement, req/s, comma-separated")
	flag.IntVar(&o.conns, "conns", 16, "connections at the fixed rate")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "fixed-rate time per path, split into -rounds")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "fixed-rate warm-up per path, not counted")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds each measurement is split into (paths take turns)")
	flag.DurationVar(&o.maxDur, "max-duration", 15*time.Second, "closed-loop time per path and connection count, split into -rounds")
	maxConns := flag.String("max-conns", "16,64", "connection counts of the closed-loop (maximum rate) runs; empty skips them")
	flag.DurationVar(&o.idle, "idle", 5*time.Second, "how long idle CPU is measured")
	flag.IntVar(&o.bodySize, "body", 1024, "response body (HTTP) or ping payload (gRPC) size, bytes")
	flag.DurationVar(&o.tcpDur, "tcp-duration", 15*time.Second, "single-connection TCP throughput time per path, split into -rounds")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "write CPU profiles of every trellis-dp (run with --enable-pprof) taken during its first fixed-rate round into this folder (needs a build with that flag)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (logs, fortio results) even on success")
	flag.Parse()
	for s := range strings.SplitSeq(*maxConns, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench/datapath: -max-conns %q: want positive integers\n", *maxConns)
			os.Exit(2)
		}
		o.maxConns = append(o.maxConns, n)
	}
	for s := range strings.SplitSeq(*rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			fmt.Fprintf(os.Stderr, "bench/datapath: -qps %q: want positive numbers\n", *rates)
			os.Exit(2)
		}
		o.rates = append(o.rates, r)
	}
	for s := range strings.SplitSeq(*scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case scenarioHTTP, scenarioGRPC, scenarioTCP:
			o.scenarios = append(o.scenarios, s)
		default:
			fmt.Fprintf(os.Stderr, "bench/datapath: -scenarios %q: want http, grpc or tcp\n", *scenarios)
			os.Exit(2)
		}
	}
	if o.binDir != "" && o.rev != "" {
		fmt.Fprintln(os.Stderr, "bench/datapath: -bin and -rev exclude each other")
		os.Exit(2)
	}
	if o.mtls != "off" && o.mtls != "on" && o.mtls != "both" {
		fmt.Fprintf(os.Stderr, "bench/datapath: -mtls %q: want off, on or both\n", o.mtls)
		os.Exit(2)
	}
	if o.rounds < 1 || o.conns < 1 || len(o.rates) == 0 || len(o.scenarios) == 0 {
		fmt.Fprintln(os.Stderr, "bench/datapath: -rounds and -conns must be positive, -qps and -scenarios not empty")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// variants are the transports measured between the proxies of each pair:
// false for plaintext, true for mTLS.
func (o options) variants() []bool {
	switch o.mtls {
	case "off":
		return []bool{false}
	case "on":
		return []bool{true}
	}
	return []bool{false, true}
}

// The scenarios: each runs with its own control plane, sidecars, HAProxies
// and backend, and measures its own direct baseline.
const (
	scenarioHTTP = "http"
	scenarioGRPC = "grpc"
	scenarioTCP  = "tcp"
)

// run does the whole benchmark and returns the exit code.
func run(ctx context.Context, o options) int {
	return runTo(ctx, o, os.Stdout)
}

// runTo runs every scenario in turn, printing each one's tables to w as
// soon as it is done, and returns the exit code.
func runTo(ctx context.Context, o options, w io.Writer) int {
	dir, err := os.MkdirTemp("", "trellis-bench-datapath-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/datapath:", err)
		return 1
	}
	var tl tools
	err = tl.find(ctx, o, dir)
	failed := err != nil
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/datapath:", err)
	}
	for _, sc := range o.scenarios {
		if failed || ctx.Err() != nil {
			break
		}
		progress("scenario %s", sc)
		b := &bench{o: o, dir: filepath.Join(dir, sc), scenario: sc, tools: tl, start: time.Now()}
		err := os.MkdirAll(b.dir, 0o755)
		if err == nil {
			err = b.setUp(ctx)
		}
		if err == nil {
			err = b.measureAll(ctx)
		}
		if err == nil {
			b.checkSidecarStats()
			b.report(w)
		}
		b.tearDown()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/datapath: scenario %s: %v\n", sc, err)
			failed = true
		}
		for _, f := range b.failures {
			fmt.Fprintf(os.Stderr, "bench/datapath: scenario %s: FAILED: %s\n", sc, f)
			failed = true
		}
	}
	if failed || o.keep {
		fmt.Fprintf(os.Stderr, "bench/datapath: logs and fortio results kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	if failed {
		return 1
	}
	return 0
}

// tools are the binaries every scenario uses, found (or built) once.
type tools struct {
	cpBin, dpBin, fortioBin, haproxyBin string
	fortioVersion, haproxyVersion       string
	// binaries says where trellis-cp and trellis-dp come from.
	binaries string
}

// find resolves the binaries: trellis-cp and trellis-dp (built into dir
// unless -bin), fortio and, unless off, haproxy.
func (b *tools) find(ctx context.Context, o options, dir string) error {
	bin := o.binDir
	switch {
	case bin != "":
		b.binaries = "prebuilt in " + bin + " (working tree at " + gitRevision(ctx, "HEAD") + ")"
	case o.rev != "":
		rev := gitRevision(ctx, o.rev)
		if rev == "unknown" {
			return fmt.Errorf("-rev %s: not a commit of this repository", o.rev)
		}
		src := filepath.Join(dir, "src")
		progress("extracting commit %s into %s", rev, src)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		extract := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", rev, src)
		if out, err := extract.CombinedOutput(); err != nil {
			return fmt.Errorf("extracting commit %s: %w\n%s", rev, err, out)
		}
		bin = filepath.Join(dir, "bin")
		if err := build(ctx, src, bin); err != nil {
			return err
		}
		b.binaries = "built from commit " + rev
	default:
		bin = filepath.Join(dir, "bin")
		if err := build(ctx, "", bin); err != nil {
			return err
		}
		b.binaries = "built from the working tree at " + gitRevision(ctx, "HEAD")
	}
	b.cpBin, b.dpBin = filepath.Join(bin, "trellis-cp"), filepath.Join(bin, "trellis-dp")
	for _, p := range []string{b.cpBin, b.dpBin} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("-bin %s: %w (run make build)", bin, err)
		}
	}

	b.fortioBin = o.fortio
	if b.fortioBin == "" {
		b.fortioBin = lookFortio(ctx)
	}
	if b.fortioBin == "" {
		return errors.New("fortio not found: go install fortio.org/fortio@v1.68.2 (newer releases need a module the Go proxy refuses), or pass -fortio")
	}
	if out, err := exec.CommandContext(ctx, b.fortioBin, "version").Output(); err == nil {
		b.fortioVersion = strings.TrimSpace(string(out))
	}

	switch o.haproxy {
	case "off":
	case "":
		b.haproxyBin = lookHAProxy()
	default:
		b.haproxyBin = o.haproxy
	}
	if b.haproxyBin != "" {
		out, err := exec.CommandContext(ctx, b.haproxyBin, "-v").Output()
		if err != nil {
			return fmt.Errorf("%s -v: %w", b.haproxyBin, err)
		}
		// "HAProxy version 2.6.12-1+deb12u4 2023/12/16 - https://haproxy.org/"
		b.haproxyVersion = "HAProxy"
		if f := strings.Fields(string(out)); len(f) > 2 && f[1] == "version" {
			b.haproxyVersion += " " + f[2]
		}
	}
	return nil
}

// build compiles trellis-cp and trellis-dp of the module in dir ("" for
// the current one) into bin.
func build(ctx context.Context, dir, bin string) error {
	progress("building trellis-cp and trellis-dp into %s", bin)
	if dir == "" {
		// The module's root, wherever this runs from (go test runs in
		// the package's folder).
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
			dir = filepath.Dir(gomod)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "grpcnotrace", "-o", bin+string(filepath.Separator), "./cmd/trellis-cp", "./cmd/trellis-dp")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the binaries: %w\n%s", err, out)
	}
	return nil
}

// gitRevision is the short commit name of rev, or "unknown".
func gitRevision(ctx context.Context, rev string) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "--verify", "--end-of-options", rev+"^{commit}").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// lookHAProxy finds haproxy on PATH or in /usr/sbin, or returns "".
func lookHAProxy() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	return ""
}

// lookFortio finds fortio on PATH or where "go install" puts it.
func lookFortio(ctx context.Context) string {
	if p, err := exec.LookPath("fortio"); err == nil {
		return p
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var dirs []string
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		dirs = append(dirs, strings.TrimSpace(lines[0]))
	}
	if len(lines) > 1 {
		for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "fortio")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// progress reports a step on stderr (the tables go to stdout).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
