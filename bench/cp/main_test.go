package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestSmallRun keeps the benchmark working: 20 proxies against an
// in-process control plane, both xDS protocols, one round of each change.
// It asserts that every proxy converged, never how fast.
func TestSmallRun(t *testing.T) {
	for _, mode := range []string{"sotw", "delta"} {
		t.Run(mode, func(t *testing.T) {
			o, err := parseFlags([]string{"-n", "20", "-baseline", "0", "-services", "4", "-outbounds", "2",
				"-mode", mode, "-cp-bin", "in-process", "-timeout", "60s", "-idle", "200ms", "-tail", "100ms", "-dir", t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if code := run(ctx, o, &out); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out.String())
			}
			t.Log("\n" + out.String())
			if !strings.Contains(out.String(), "20/20") {
				t.Fatalf("not every proxy configured:\n%s", out.String())
			}
		})
	}
}
