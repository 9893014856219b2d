package apiserver_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

func newDataplaneTokenEnv(t *testing.T) (string, *manager.Manager, *tokens.DataplaneTokens) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	dt := tokens.NewDataplaneTokens(mgr.Store())
	api := apiserver.New(mgr, apiserver.Info{Version: "test"}, nil, log)
	api.Handle("POST /tokens/dataplane", api.DataplaneTokenHandler(dt))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, mgr, dt
}

func postToken(t *testing.T, url, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url+"/tokens/dataplane", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// Kuma's request body gives a token whose claims the DP server checks.
func TestIssueDataplaneToken(t *testing.T) {
	url, mgr, dt := newDataplaneTokenEnv(t)
	code, ctype, tok := postToken(t, url, `{"name":"backend-1","mesh":"default","tags":{"kuma.io/service":["backend"]},"type":"dataplane","validFor":"24h"}`)
	if code != 200 || ctype != "text/plain" || strings.Count(tok, ".") != 2 {
		t.Fatalf("%d %s %q", code, ctype, tok)
	}
	claims, err := dt.ValidateDataplaneToken(context.Background(), tok, "default")
	if err != nil {
		t.Fatal(err)
	}
	if claims.Name != "backend-1" || !slices.Equal(claims.Tags["kuma.io/service"], []string{"backend"}) || claims.Type != "dataplane" {
		t.Fatalf("claims %+v", claims)
	}
	if d := claims.ExpiresAt.Sub(claims.IssuedAt.Time); d != 24*time.Hour {
		t.Fatalf("valid for %s", d)
	}
	res, err := mgr.Registry().Decode([]byte("type: Dataplane\nmesh: default\nname: backend-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 1\n    tags: {kuma.io/service: payments}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dt.AuthenticateDataplane(context.Background(), tok, "default", "backend-1", res.Spec.(*mesh.Dataplane)); err == nil {
		t.Fatal("a backend token registered payments")
	}
	// Without validFor: Kuma's ten years.
	code, _, tok = postToken(t, url, `{"mesh":"default"}`)
	if code != 200 {
		t.Fatalf("%d %s", code, tok)
	}
	claims, err = dt.ValidateDataplaneToken(context.Background(), tok, "default")
	if err != nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) != tokens.DefaultDataplaneTokenValidity {
		t.Fatalf("%+v %v", claims, err)
	}
}

func TestIssueDataplaneTokenValidation(t *testing.T) {
	url, _, _ := newDataplaneTokenEnv(t)
	for body, want := range map[string]string{
		`{}`:                                       `"field":"mesh","reason":"cannot be empty"`,
		`{"mesh":"nope"}`:                          `mesh \"nope\" does not exist`,
		`{"mesh":"default","validFor":"soon"}`:     `"field":"validFor"`,
		`{"mesh":"default","validFor":"-1h"}`:      `"reason":"must be positive"`,
		`{"mesh":"default","type":"ingress"}`:      `"field":"type"`,
		`{"mesh":"default","name":"Bad_Name!"}`:    `"field":"name"`,
		`{"mesh":"default","tags":{"a":[]}}`:       `"field":"tags[\"a\"]","reason":"must list at least one value"`,
		`{"mesh":"default","tags":{"a":["x",""]}}`: `"field":"tags[\"a\"][1]"`,
		`not json`: `the body must be a JSON object`,
	} {
		code, _, out := postToken(t, url, body)
		if code != 400 || !strings.Contains(out, want) {
			t.Errorf("%s: %d %s, want 400 with %s", body, code, out, want)
		}
	}
}
