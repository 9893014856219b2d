package ctl_test

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/ctl"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// authHarness runs trellisctl against an HTTPS API that wants an admin
// token from every client (localhostIsAdmin off, as for a remote client).
type authHarness struct {
	*harness
	caFile string
	admin  string
	tokens *tokens.UserTokens
}

func newAuthHarness(t *testing.T) *authHarness {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	ut := tokens.NewUserTokens(st)
	if err := ut.EnsureUserSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := ut.IssueUserToken(ctx, "admin", []string{tokens.UserAdminGroup}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "9.9.9-test"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	api.UseAuthn(apiserver.Authn{Tokens: ut, LocalhostIsAdmin: false})
	srv := httptest.NewTLSServer(api.Handler())
	t.Cleanup(srv.Close)
	home := t.TempDir()
	caFile := filepath.Join(home, "api-server.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:    t,
		url:  srv.URL,
		api:  apiclient.New(srv.URL, srv.Client()),
		home: home,
		env:  map[string]string{ctl.EnvConfig: filepath.Join(home, "trellisctl.yaml")},
	}
	return &authHarness{harness: h, caFile: caFile, admin: admin, tokens: ut}
}

func TestFlagsTokenAndCA(t *testing.T) {
	h := newAuthHarness(t)
	base := []string{"--api-url", h.url}

	r := h.mustFail("", append(base, "--ca-cert-file", h.caFile, "get", "meshes")...)
	wantContains(t, "stderr", r.stderr, "Unauthenticated", "--token", "admin-user-token")

	r = h.mustFail("", append(base, "--token", h.admin, "get", "meshes")...)
	wantContains(t, "stderr", r.stderr, "certificate", "--ca-cert-file", "--skip-verify")

	r = h.mustRun("", append(base, "--ca-cert-file", h.caFile, "--token", h.admin, "get", "meshes")...)
	wantContains(t, "stdout", r.stdout, "default")
	h.mustRun("", append(base, "--skip-verify", "--token", h.admin, "get", "meshes")...)

	tokenFile := filepath.Join(h.home, "admin-user-token")
	_ = os.WriteFile(tokenFile, []byte(h.admin+"\n"), 0o600)
	h.mustRun("", append(base, "--ca-cert-file", h.caFile, "--token-file", tokenFile, "get", "meshes")...)
	r = h.mustFail("", append(base, "--ca-cert-file", h.caFile, "--token-file", tokenFile, "--token", h.admin, "get", "meshes")...)
	wantContains(t, "stderr", r.stderr, "exclusive")

	r = h.mustFail("", append(base, "--ca-cert-file", h.caFile, "--token", "garbage", "get", "meshes")...)
	wantContains(t, "stderr", r.stderr, "invalid user token")
}

func TestEnvironmentTokenAndCA(t *testing.T) {
	h := newAuthHarness(t)
	h.env[ctl.EnvAPIURL] = h.url
	h.env[ctl.EnvAPIToken] = h.admin
	h.env[ctl.EnvAPICACertFile] = h.caFile
	r := h.mustRun("", "get", "meshes")
	wantContains(t, "stdout", r.stdout, "default")
	// Flags win over the environment.
	r = h.mustFail("", "--token", "garbage", "get", "meshes")
	wantContains(t, "stderr", r.stderr, "invalid user token")
}

func TestGenerateUserToken(t *testing.T) {
	h := newAuthHarness(t)
	base := []string{"--api-url", h.url, "--ca-cert-file", h.caFile}

	r := h.mustRun("", append(base, "--token", h.admin, "generate", "user-token", "--name", "jane@example.com",
		"--group", "ops", "--group", tokens.UserAdminGroup, "--valid-for", "2h")...)
	jane := strings.TrimSpace(r.stdout)
	claims, err := h.tokens.ValidateUserToken(context.Background(), jane)
	if err != nil {
		t.Fatalf("the generated token: %v", err)
	}
	if claims.Name != "jane@example.com" || !claims.InUserGroup("ops") || !claims.InUserGroup(tokens.UserAdminGroup) ||
		time.Until(claims.ExpiresAt.Time) > 2*time.Hour || time.Until(claims.ExpiresAt.Time) < time.Hour {
		t.Fatalf("claims = %+v", claims)
	}
	h.mustRun("", append(base, "--token", jane, "get", "meshes")...)

	r = h.mustRun("", append(base, "--token", jane, "generate", "user-token", "--name", "dev", "--group", "devs", "--valid-for", "1h")...)
	dev := strings.TrimSpace(r.stdout)
	r = h.mustFail("", append(base, "--token", dev, "get", "meshes")...)
	wantContains(t, "stderr", r.stderr, "Access Denied", `user "dev" is not in group mesh-system:admin`)
	r = h.mustFail("", append(base, "--token", dev, "generate", "user-token", "--name", "x", "--valid-for", "1h")...)
	wantContains(t, "stderr", r.stderr, "Access Denied")

	r = h.mustFail("", append(base, "--token", h.admin, "generate", "user-token", "--name", "x")...)
	wantContains(t, "stderr", r.stderr, "valid-for")
	r = h.mustFail("", append(base, "generate", "user-token", "--name", "x", "--valid-for", "1h")...)
	wantContains(t, "stderr", r.stderr, "Unauthenticated")
}

func TestControlPlaneWithCredentials(t *testing.T) {
	h := newAuthHarness(t)
	add := []string{"config", "control-planes", "add", "--name", "remote", "--address", h.url}

	r := h.mustFail("", append(add, "--ca-cert-file", h.caFile)...)
	wantContains(t, "stderr", r.stderr, "refused GET /", "Unauthenticated", "--auth-type tokens")
	r = h.mustFail("", append(add, "--auth-type", "basic", "--auth-conf", "user=x")...)
	wantContains(t, "stderr", r.stderr, `--auth-type "basic" is not supported`)
	r = h.mustFail("", append(add, "--auth-type", "tokens")...)
	wantContains(t, "stderr", r.stderr, "--auth-conf token=YOUR_TOKEN")

	h.mustRun("", append(add, "--ca-cert-file", h.caFile, "--auth-type", "tokens", "--auth-conf", "token="+h.admin)...)
	data, err := os.ReadFile(h.env[ctl.EnvConfig])
	if err != nil {
		t.Fatal(err)
	}
	var cfg ctl.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	var api ctl.APIServer
	for _, cp := range cfg.ControlPlanes {
		if cp.Name == "remote" {
			api = cp.Coordinates.APIServer
		}
	}
	if api.URL != h.url || api.CACertFile != h.caFile || api.AuthType != "tokens" || api.AuthConf["token"] != h.admin {
		t.Fatalf("stored control plane: %+v\n%s", api, data)
	}
	// kumactl's field names.
	wantContains(t, "config", string(data), "caCertFile:", "authType: tokens", "authConf:")

	// Commands now use the stored credentials.
	r = h.mustRun("", "get", "meshes")
	wantContains(t, "stdout", r.stdout, "default")
	// --token overrides the stored token.
	h.mustFail("", "--token", "garbage", "get", "meshes")

	// --token is the short way to store a token; --skip-verify is stored too.
	h.mustRun("", "config", "control-planes", "add", "--name", "other", "--address", h.url, "--skip-verify", "--token", h.admin)
	h.mustRun("", "get", "meshes")
}
