// Package demo runs a whole Trellis mesh on loopback for a newcomer to
// look at: a control plane (trellis-cp) on the embedded store, two small
// HTTP apps served in-process (a frontend that calls a backend), and one
// trellis-dp sidecar per app instance, wired through generated Dataplane
// files. `trellisctl demo` is a thin shell around Run; the apps are
// exported for tests and later policy demos.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// DefaultAPIPort is the control plane's usual API port.
const DefaultAPIPort = 5681

// Options configure Run.
type Options struct {
	// DataDir holds the control plane's data, the Dataplane files and the
	// logs. Empty: a temporary folder, removed when the demo stops cleanly.
	DataDir string
	// APIPort is the control plane's API port on 127.0.0.1; 0 picks a free
	// one. With APIPortFallback, a busy APIPort is replaced by a free port
	// (and Run says so); without, it is an error.
	APIPort         int
	APIPortFallback bool
	// Backends is how many backend instances (each with its sidecar) run.
	Backends int
	// ReadyTimeout bounds start-up (default one minute).
	ReadyTimeout time.Duration
	// BinDir is where trellis-cp and trellis-dp are. Empty: next to the
	// running executable, then on PATH.
	BinDir string
	// CtlCommand is how the printed hints spell trellisctl (default
	// "trellisctl").
	CtlCommand string
	// Out receives progress and the summary (default os.Stdout).
	Out io.Writer
}

// Binaries Run starts.
const (
	cpBinary = "trellis-cp"
	dpBinary = "trellis-dp"
)

// ErrBinaryNotFound is wrapped when trellis-cp or trellis-dp is missing.
var ErrBinaryNotFound = errors.New("not found")

// Run starts the demo, prints how to use it, and runs until ctx ends
// (Ctrl-C) or one of its processes exits; then it stops everything:
// SIGTERM to each child, a kill after 5 s.
func Run(ctx context.Context, o Options) (err error) {
	if err := o.defaults(); err != nil {
		return err
	}
	cpBin, err := findBinary(o.BinDir, cpBinary)
	if err != nil {
		return err
	}
	dpBin, err := findBinary(o.BinDir, dpBinary)
	if err != nil {
		return err
	}
	dataDir, temporary, err := prepareDataDir(o.DataDir)
	if err != nil {
		return err
	}
	d := &demo{opts: o, out: o.Out, cpBin: cpBin, dpBin: dpBin, dataDir: dataDir,
		hc: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}}
	defer func() {
		d.stop()
		switch {
		case err != nil && d.cp != nil:
			fmt.Fprintf(d.out, "The logs are kept in %s.\n", d.logDir())
		case temporary:
			if rmErr := os.RemoveAll(dataDir); rmErr != nil {
				fmt.Fprintf(d.out, "Could not remove the temporary data dir %s: %v\n", dataDir, rmErr)
			}
		}
	}()
	if err := d.start(ctx, temporary); err != nil {
		if ctx.Err() != nil { // Ctrl-C while starting: not a failure
			fmt.Fprintln(d.out, "\nStopping the demo ...")
			return nil
		}
		return err
	}
	d.printSummary()
	return d.wait(ctx)
}

func (o *Options) defaults() error {
	if o.Backends < 1 {
		return fmt.Errorf("--backends %d: want at least 1", o.Backends)
	}
	if o.APIPort < 0 || o.APIPort > 65535 {
		return fmt.Errorf("--api-port %d: want a port number (0 picks a free one)", o.APIPort)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = time.Minute
	}
	if o.CtlCommand == "" {
		o.CtlCommand = "trellisctl"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	return nil
}

// findBinary looks for name in dir, or, when dir is empty, next to the
// running executable, then on PATH.
func findBinary(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s %w in %s: run `make build` first", name, ErrBinaryNotFound, dir)
		}
		return p, nil
	}
	var nextTo string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		nextTo = filepath.Dir(exe)
		if p, err := exec.LookPath(filepath.Join(nextTo, name)); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s %w next to trellisctl (%s) or on PATH: run `make build`, which puts "+
		"trellis-cp, trellis-dp and trellisctl in bin/, then `bin/trellisctl demo` (or `make demo`)", name, ErrBinaryNotFound, nextTo)
}

// prepareDataDir creates the data dir, or a temporary one when dir is
// empty (temporary is then true).
func prepareDataDir(dir string) (path string, temporary bool, err error) {
	if dir == "" {
		path, err := os.MkdirTemp("", "trellis-demo-")
		if err != nil {
			return "", false, fmt.Errorf("creating a temporary data dir: %w", err)
		}
		return path, true, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", false, fmt.Errorf("--data-dir: %w", err)
	}
	return abs, false, nil
}
