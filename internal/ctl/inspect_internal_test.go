package ctl

import "testing"

func TestShortenAndStatus(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"short":         "short",
		"two\n\tlines":  "two lines",
		"0123456789abc": "012345678…",
		"ééééééééééé":   "ééééééééé…",
	} {
		if got := shorten(in, 10); got != want {
			t.Errorf("shorten(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range []struct {
		sub  map[string]any
		want string
	}{
		{nil, "Offline"},
		{map[string]any{"connectTime": "2025-01-01T00:00:00Z"}, "Online"},
		{map[string]any{"disconnectTime": nil}, "Online"},
		{map[string]any{"disconnectTime": "2025-01-01T00:00:00Z"}, "Offline"},
	} {
		if got := proxyStatus(c.sub); got != c.want {
			t.Errorf("proxyStatus(%v) = %s, want %s", c.sub, got, c.want)
		}
	}
}
