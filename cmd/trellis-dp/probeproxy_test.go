package main

import (
	"strings"
	"testing"
)

func TestProbeProxyPort(t *testing.T) {
	for _, tc := range []struct {
		o    runOptions
		env  string
		want int
		err  string
	}{
		{runOptions{probeProxyPort: -1}, "", 9001, ""},
		{runOptions{probeProxyPort: -1, dataplaneFile: "dp.yaml"}, "", 0, ""},
		{runOptions{probeProxyPort: -1}, "9100", 9100, ""},
		{runOptions{probeProxyPort: -1}, "0", 0, ""},
		{runOptions{probeProxyPort: 9200}, "9100", 9200, ""},
		{runOptions{probeProxyPort: 0}, "", 0, ""},
		{runOptions{probeProxyPort: -1}, "x", 0, envProbeProxyPort},
		{runOptions{probeProxyPort: 70000}, "", 0, "--application-probe-proxy-port"},
	} {
		t.Setenv(envProbeProxyPort, tc.env)
		got, err := probeProxyPort(&tc.o)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v env %q: %d, %v; want %d, %q", tc.o, tc.env, got, err, tc.want, tc.err)
		}
	}
}
