package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// strictEnv, set to 1 (CI does), turns a missing fortio or haproxy into a
// failure instead of a skip, as for PostgreSQL in internal/testing/pgtest.
const strictEnv = "TRELLIS_TEST_STRICT"

// TestScenariosTiny runs every scenario once at a tiny size (a couple of
// seconds and a few hundred requests per path) to keep the program
// working: the control plane, the sidecar pairs, the HAProxy pairs, fortio
// over HTTP/1.1 and gRPC, the TCP throughput client, the mTLS checks and
// the report. It asserts no figure, only that the run passes its own
// correctness checks (every request answered, no sidecar error counter
// raised, mTLS really on) and prints every table.
func TestScenariosTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane, sidecars and HAProxies; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var missing []string
	if lookFortio(ctx) == "" {
		missing = append(missing, "fortio (go install fortio.org/fortio@v1.68.2)")
	}
	if lookHAProxy() == "" {
		missing = append(missing, "haproxy (Debian: apt-get install haproxy)")
	}
	if len(missing) > 0 {
		msg := "the data path benchmark needs " + strings.Join(missing, " and ")
		if os.Getenv(strictEnv) == "1" {
			t.Fatalf("%s (%s=1, so this fails instead of skipping)", msg, strictEnv)
		}
		t.Skipf("!!! SKIPPING: %s", msg)
	}

	o := options{
		mtls:      "both",
		scenarios: []string{scenarioHTTP, scenarioGRPC, scenarioTCP},
		rates:     []float64{100, 200},
		conns:     4,
		duration:  time.Second,
		rounds:    1,
		maxDur:    time.Second,
		maxConns:  []int{4},
		idle:      200 * time.Millisecond,
		bodySize:  1024,
		tcpDur:    time.Second,
	}
	var out bytes.Buffer
	if code := runTo(ctx, o, &out); code != 0 {
		t.Fatalf("exit code %d (the reasons are on stderr); tables so far:\n%s", code, out.String())
	}
	report := out.String()
	for _, want := range []string{
		"## Data path: 1 KiB HTTP/1.1 GETs on loopback",
		"## Data path: gRPC unary pings",
		"## Data path: single-connection TCP throughput on loopback",
		"### Latency at 200 req/s",
		"| HAProxy pair, mTLS |",
		"| Trellis pair, mTLS |",
		"req/s per proxy core",
		"Trellis pair, mTLS: the server sidecar counted",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report has no %q:\n%s", want, report)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Log("\n" + report)
	}
}
