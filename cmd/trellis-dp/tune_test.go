package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
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

type applierFunc func(context.Context, *xdsconfig.Config) error

func (f applierFunc) Apply(ctx context.Context, cfg *xdsconfig.Config) error { return f(ctx, cfg) }

func TestApplyNotifier(t *testing.T) {
	fail := false
	n := newApplyNotifier(applierFunc(func(context.Context, *xdsconfig.Config) error {
		if fail {
			return errors.New("rejected")
		}
		return nil
	}))
	for range 2 { // a burst: one signal pending is enough
		if err := n.Apply(context.Background(), xdsconfig.New()); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-n.applied:
	default:
		t.Fatal("no signal after an applied configuration")
	}
	fail = true
	if err := n.Apply(context.Background(), xdsconfig.New()); err == nil {
		t.Fatal("the applier's error was lost")
	}
	select {
	case <-n.applied:
		t.Fatal("a signal after a rejected configuration")
	default:
	}
}
