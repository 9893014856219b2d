package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// sysmonSetting is added to GODEBUG for "trellis-dp run" (see tunedEnv).
//
// The Go runtime's system monitor (sysmon) parks itself whenever every P
// is idle, and the first system call of the next busy stretch wakes it
// with a futex; it then polls every 20 µs until the process idles again.
// A sidecar at a moderate request rate idles between most requests, so it
// paid that for nearly every request: about a third of its CPU at 1,000
// req/s (BENCHMARKS.md, "Data plane"). With schedtrace set, sysmon never
// parks and backs off to one wake-up every 10 ms instead. Its period, the
// largest the runtime takes (about 24.8 days, in ms), makes the one-line
// scheduler trace it enables appear at most once per 24.8 days of the
// machine's uptime (on standard error).
const sysmonSetting = "schedtrace=2147483647"

// tuningOffEnv turns the runtime tuning off when set to "off".
const tuningOffEnv = "TRELLIS_DP_RUNTIME_TUNING"

// tunedEnv returns the environment to re-execute the proxy with so that
// the runtime settings that can only be read at process start apply, or
// false when there is nothing to do: tuning is off, or GODEBUG already
// sets schedtrace (the operator's choice, or this is the re-executed
// process).
func tunedEnv(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	godebug := ""
	for _, kv := range environ {
		switch {
		case kv == tuningOffEnv+"=off":
			return nil, false
		case strings.HasPrefix(kv, "GODEBUG="):
			godebug = strings.TrimPrefix(kv, "GODEBUG=")
		default:
			out = append(out, kv)
		}
	}
	for _, setting := range strings.Split(godebug, ",") {
		if strings.HasPrefix(setting, "schedtrace=") {
			return nil, false
		}
	}
	if godebug != "" {
		godebug += ","
	}
	return append(out, "GODEBUG="+godebug+sysmonSetting), true
}

// isRun reports whether the command line runs the proxy (and not, say,
// "trellis-dp version").
func isRun(args []string) bool {
	return len(args) > 1 && args[1] == "run"
}

// tuneRuntime re-executes the proxy with tunedEnv's environment (same
// process, same arguments) before anything else happens. When that
// fails, the proxy goes on untuned.
func tuneRuntime() {
	if !isRun(os.Args) {
		return
	}
	env, ok := tunedEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	reexec(exe, os.Args, env)
}

// Page releases (releaseExecutablePages): settleDelay after the last of a
// burst of configuration updates (they touch code that then stays
// mapped), and every pageReleaseInterval.
const (
	settleDelay         = time.Second
	pageReleaseInterval = 5 * time.Minute
)

// applyNotifier passes configurations on to the proxy and signals on
// applied each one it accepted.
type applyNotifier struct {
	xdsconfig.Applier
	applied chan struct{}
}

func newApplyNotifier(a xdsconfig.Applier) *applyNotifier {
	return &applyNotifier{Applier: a, applied: make(chan struct{}, 1)}
}

// Apply implements xdsconfig.Applier.
func (n *applyNotifier) Apply(ctx context.Context, cfg *xdsconfig.Config) error {
	err := n.Applier.Apply(ctx, cfg)
	if err == nil {
		select {
		case n.applied <- struct{}{}:
		default:
		}
	}
	return err
}

// releasePages releases the executable's mapped pages settleDelay after
// each burst of applied configurations and every pageReleaseInterval
// after that, until ctx ends.
func releasePages(ctx context.Context, applied <-chan struct{}, log *slog.Logger) {
	if os.Getenv(tuningOffEnv) == "off" {
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-applied:
			timer.Reset(settleDelay)
		case <-timer.C:
			log.Debug("released the executable's mapped pages", "bytes", releaseExecutablePages())
			timer.Reset(pageReleaseInterval)
		}
	}
}
