package ctl_test

import (
	"strings"
	"testing"
)

func TestDemoRejectsBadFlags(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--backends", "0"}, "--backends 0: want at least 1"},
		{[]string{"demo", "--api-port", "70000"}, "--api-port 70000"},
		{[]string{"demo", "extra"}, "unknown command"},
	} {
		r := h.mustFail("", tc.args...)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("trellisctl %s: stderr %q does not contain %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
}

func TestDemoHelpSaysWhereTheBinariesComeFrom(t *testing.T) {
	r := newHarness(t).mustRun("", "demo", "--help")
	for _, want := range []string{"make build", "--backends", "--api-port", "--data-dir"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo --help does not mention %q:\n%s", want, r.stdout)
		}
	}
}
