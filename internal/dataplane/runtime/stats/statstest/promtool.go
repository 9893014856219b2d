// Package statstest checks Prometheus text output in tests with the
// promtool binary (Debian's prometheus package).
package statstest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// allowedHint is the one promtool finding that Envoy's names cause and
// that is accepted: counters named by Envoy without a _total suffix.
const allowedHint = `counter metrics should have "_total" suffix`

// Findings runs `promtool check metrics` on body and returns its findings
// other than the accepted _total hint. It skips t when promtool is not
// installed (and fails it under TRELLIS_TEST_STRICT=1).
func Findings(t testing.TB, body string) []string {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TRELLIS_TEST_STRICT") == "1" {
			t.Fatalf("promtool is not installed (Debian package prometheus) and TRELLIS_TEST_STRICT=1")
		}
		t.Skip("SKIPPED: promtool is not installed (Debian package prometheus); the metrics lint is not checked")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exit 3 for lint findings; the output says what
	var bad []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasSuffix(l, allowedHint) {
			bad = append(bad, l)
		}
	}
	return bad
}

// CheckPromtool fails t when promtool finds anything in body but the
// accepted _total hint.
func CheckPromtool(t testing.TB, body string) {
	t.Helper()
	if bad := Findings(t, body); len(bad) > 0 {
		t.Errorf("promtool check metrics:\n%s\nin:\n%s", strings.Join(bad, "\n"), body)
	}
}
