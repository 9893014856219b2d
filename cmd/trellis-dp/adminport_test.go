package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestAnnounceAdminPort(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct{ in, addr, want string }{
		{`{"networking":{"address":"10.0.0.1"}}`, "127.0.0.1:9902", `"admin":{"port":9902}`},
		{`{"networking":{"admin":{"port":9000}}}`, "127.0.0.1:9902", `"admin":{"port":9000}`},
		{`{"networking":{"address":"10.0.0.1"}}`, "127.0.0.1:0", `{"networking":{"address":"10.0.0.1"}}`},
		{`{"name":"x"}`, "127.0.0.1:9902", `{"name":"x"}`},
	} {
		got, err := announceAdminPort([]byte(tc.in), tc.addr, log)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !strings.Contains(string(got), tc.want) {
			t.Errorf("announceAdminPort(%s, %s) = %s, want it to contain %s", tc.in, tc.addr, got, tc.want)
		}
	}
	if _, err := announceAdminPort([]byte(`{}`), "nonsense", log); err == nil || !strings.Contains(err.Error(), "--admin-addr") {
		t.Errorf("a bad --admin-addr: %v", err)
	}
}
