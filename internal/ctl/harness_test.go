package ctl_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/ctl"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// harness runs trellisctl against a real API server (in-memory store) with
// a private environment, home directory and config file.
type harness struct {
	t      *testing.T
	url    string
	api    *apiclient.Client
	home   string
	env    map[string]string
	cfgDir string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	mgr := manager.New(memory.New(), kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "9.9.9-test"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	home := t.TempDir()
	return &harness{
		t:    t,
		url:  srv.URL,
		api:  apiclient.New(srv.URL, nil),
		home: home,
		env: map[string]string{
			ctl.EnvAPIURL: srv.URL,
			ctl.EnvConfig: filepath.Join(home, "trellisctl.yaml"),
		},
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes trellisctl with args, feeding stdin.
func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	opts := ctl.Options{
		Stdin:   strings.NewReader(stdin),
		Stdout:  &out,
		Stderr:  &errb,
		Getenv:  func(k string) string { return h.env[k] },
		HomeDir: func() (string, error) { return h.home, nil },
	}
	code := ctl.Run(context.Background(), opts, args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustRun runs trellisctl and fails the test on a non-zero exit.
func (h *harness) mustRun(stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	if r.code != 0 {
		h.t.Fatalf("trellisctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail runs trellisctl and fails the test on a zero exit.
func (h *harness) mustFail(stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	if r.code == 0 {
		h.t.Fatalf("trellisctl %s: want a non-zero exit\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// exists reports whether the API has the resource.
func (h *harness) exists(plural, mesh, name string) bool {
	h.t.Helper()
	_, err := h.api.Get(context.Background(), plural, mesh, name)
	if err == nil {
		return true
	}
	if apiErr, ok := err.(*apiclient.APIError); ok && apiErr.Status == 404 {
		return false
	}
	h.t.Fatalf("GET %s/%s/%s: %v", mesh, plural, name, err)
	return false
}

// deadURL returns an address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}
