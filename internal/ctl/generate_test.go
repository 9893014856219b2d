package ctl_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/ctl"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// newTokenHarness is a harness whose API issues dataplane tokens.
func newTokenHarness(t *testing.T) (*harness, *tokens.DataplaneTokens) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	dt := tokens.NewDataplaneTokens(mgr.Store())
	api := apiserver.New(mgr, apiserver.Info{Version: "9.9.9-test"}, nil, log)
	api.Handle("POST /tokens/dataplane", api.DataplaneTokenHandler(dt))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	home := t.TempDir()
	return &harness{t: t, url: srv.URL, api: apiclient.New(srv.URL, nil), home: home,
		env: map[string]string{ctl.EnvAPIURL: srv.URL, ctl.EnvConfig: filepath.Join(home, "trellisctl.yaml")}}, dt
}

func TestGenerateDataplaneToken(t *testing.T) {
	h, dt := newTokenHarness(t)
	r := h.mustRun("", "generate", "dataplane-token", "--name", "web-1", "--mesh", "default",
		"--tag", "kuma.io/service=web,web-api", "--tag", "version=v1", "--tag", "version=v2", "--valid-for", "24h")
	claims, err := dt.ValidateDataplaneToken(context.Background(), r.stdout, "default")
	if err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	if claims.Name != "web-1" || !slices.Equal(claims.Tags["kuma.io/service"], []string{"web", "web-api"}) ||
		!slices.Equal(claims.Tags["version"], []string{"v1", "v2"}) || claims.ExpiresAt.Sub(claims.IssuedAt.Time) != 24*time.Hour {
		t.Fatalf("claims %+v", claims)
	}

	r = h.mustFail("", "generate", "dataplane-token", "--tag", "kuma.io/service")
	wantContains(t, "stderr", r.stderr, `--tag "kuma.io/service": want key=value`)
	r = h.mustFail("", "generate", "dataplane-token", "--mesh", "nope", "--valid-for", "1h")
	wantContains(t, "stderr", r.stderr, `mesh "nope" does not exist`)
	r = h.mustFail("", "generate", "dataplane-token", "--valid-for", "0s")
	wantContains(t, "stderr", r.stderr, "must be positive")
}
