package demo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/demo"
)

// fakeBinaries writes shell scripts named trellis-cp and trellis-dp that
// run cpScript and exit 1, respectively.
func fakeBinaries(t *testing.T, cpScript string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("uses shell scripts as fake binaries")
	}
	dir := t.TempDir()
	for name, script := range map[string]string{"trellis-cp": cpScript, "trellis-dp": "exit 1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunSaysWhatToBuildWhenBinariesAreMissing(t *testing.T) {
	err := demo.Run(context.Background(), demo.Options{BinDir: t.TempDir(), Backends: 1, Out: &bytes.Buffer{}})
	if !errors.Is(err, demo.ErrBinaryNotFound) || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("err = %v, want ErrBinaryNotFound telling to run make build", err)
	}
}

func TestRunReportsAControlPlaneThatExits(t *testing.T) {
	bin := fakeBinaries(t, `echo "opening the store: disk on fire" >&2; exit 3`)
	dataDir := t.TempDir()
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{BinDir: bin, DataDir: dataDir, Backends: 1, Out: &out})
	if err == nil {
		t.Fatal("Run succeeded with a control plane that exits")
	}
	for _, want := range []string{"the control plane (trellis-cp) exited while starting (exit status 3)",
		filepath.Join(dataDir, "logs", "trellis-cp.log"), "disk on fire"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if !strings.Contains(out.String(), "The logs are kept in") {
		t.Errorf("output does not say where the logs are:\n%s", out.String())
	}
}

func TestRunTimesOutOnAControlPlaneThatNeverAnswers(t *testing.T) {
	bin := fakeBinaries(t, `echo "still thinking"; exec sleep 60`)
	start := time.Now()
	err := demo.Run(context.Background(), demo.Options{BinDir: bin, DataDir: t.TempDir(), APIPort: 0, Backends: 1,
		ReadyTimeout: 500 * time.Millisecond, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "the control plane (trellis-cp) did not become ready within 500ms") ||
		!strings.Contains(err.Error(), "still thinking") {
		t.Fatalf("err = %v, want a timeout naming trellis-cp and quoting its log", err)
	}
	// SIGTERM ends the fake control plane at once: no 5 s kill wait.
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Run took %s to give up and stop the control plane", d)
	}
}

func TestRunRejectsABusyAPIPortItWasTold(t *testing.T) {
	bin := fakeBinaries(t, "exit 1")
	busy := httptestListener(t)
	err := demo.Run(context.Background(), demo.Options{BinDir: bin, DataDir: t.TempDir(), APIPort: busy, Backends: 1, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Fatalf("err = %v, want the busy --api-port reported", err)
	}

	// Without an explicit port, a busy one is replaced, with a note.
	var out bytes.Buffer
	_ = demo.Run(context.Background(), demo.Options{BinDir: bin, DataDir: t.TempDir(), APIPort: busy, APIPortFallback: true, Backends: 1, Out: &out})
	if want := fmt.Sprintf("Note: port %d is in use", busy); !strings.Contains(out.String(), want) {
		t.Errorf("output does not contain %q:\n%s", want, out.String())
	}
}

// httptestListener holds a loopback port for the test's duration and
// returns it.
func httptestListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}
