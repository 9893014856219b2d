package main

import (
	"slices"
	"testing"
)

func TestTunedEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: no re-exec
	}{
		{"adds GODEBUG", []string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + sysmonSetting}},
		{"keeps other settings", []string{"GODEBUG=http2debug=1", "HOME=/"}, []string{"HOME=/", "GODEBUG=http2debug=1," + sysmonSetting}},
		{"already set", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, nil},
		{"re-executed", []string{"GODEBUG=" + sysmonSetting}, nil},
		{"turned off", []string{"PATH=/bin", tuningOffEnv + "=off"}, nil},
	} {
		got, ok := tunedEnv(tc.in)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("%s: tunedEnv(%q) = %q, %v; want %q", tc.name, tc.in, got, ok, tc.want)
		}
	}
	if !isRun([]string{"trellis-dp", "run", "--cp-address", "x"}) || isRun([]string{"trellis-dp", "version"}) || isRun([]string{"trellis-dp"}) {
		t.Error("isRun")
	}
}
