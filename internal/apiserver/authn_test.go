package apiserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/tlscert"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// Remote addresses requests come from. httptest.NewRequest's default,
// 192.0.2.1 (TEST-NET-1), is not loopback, so the middleware sees a remote
// client without any real remote network.
const (
	remote = "192.0.2.1:40000"
	local4 = "127.0.0.1:40000"
	local6 = "[::1]:40000"
	mapped = "[::ffff:127.0.0.1]:40000"
)

type authnEnv struct {
	t       *testing.T
	handler http.Handler
	tokens  *tokens.UserTokens
	api     *apiserver.Server
}

func newAuthnEnv(t *testing.T, localhostIsAdmin bool) *authnEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	ut := tokens.NewUserTokens(st)
	if err := ut.EnsureUserSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "test"}, nil, log)
	api.UseAuthn(apiserver.Authn{Tokens: ut, LocalhostIsAdmin: localhostIsAdmin})
	return &authnEnv{t: t, handler: api.Handler(), tokens: ut, api: api}
}

func (e *authnEnv) token(name string, groups ...string) string {
	e.t.Helper()
	tok, err := e.tokens.IssueUserToken(context.Background(), name, groups, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// call serves one request from remoteAddr with an optional Authorization
// header value and returns the recorder and the decoded JSON body.
func (e *authnEnv) call(remoteAddr, method, path, authz, body string, headers ...string) (*httptest.ResponseRecorder, map[string]any) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remoteAddr
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	var out map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
	}
	return rec, out
}

func (e *authnEnv) expect(remoteAddr, method, path, authz string, status int, detail string) {
	e.t.Helper()
	rec, out := e.call(remoteAddr, method, path, authz, "")
	if rec.Code != status {
		e.t.Fatalf("%s %s from %s: status %d, want %d: %s", method, path, remoteAddr, rec.Code, status, rec.Body)
	}
	if detail == "" {
		return
	}
	if out["type"] != "/std-errors" || out["status"] != float64(status) {
		e.t.Fatalf("%s %s from %s: not a std-errors body: %s", method, path, remoteAddr, rec.Body)
	}
	if got, _ := out["detail"].(string); !strings.Contains(got, detail) {
		e.t.Fatalf("%s %s from %s: detail %q does not contain %q", method, path, remoteAddr, got, detail)
	}
}

func TestRemoteClientsNeedAnAdminToken(t *testing.T) {
	e := newAuthnEnv(t, true)
	admin := "Bearer " + e.token("alice", "team-a", tokens.UserAdminGroup)

	e.expect(remote, "GET", "/meshes", "", 401, "needs an admin user token")
	e.expect(remote, "GET", "/", "", 401, "Authorization: Bearer")
	e.expect(remote, "PUT", "/meshes/m1", "", 401, "needs an admin user token")
	e.expect(remote, "GET", "/meshes", admin, 200, "")
	e.expect("[2001:db8::1]:443", "GET", "/meshes/default", admin, 200, "")
	rec, _ := e.call(remote, "PUT", "/meshes/m1", admin, `{"type":"Mesh","name":"m1"}`)
	if rec.Code != 201 {
		t.Fatalf("PUT with an admin token: %d %s", rec.Code, rec.Body)
	}

	rec, _ = e.call(remote, "GET", "/meshes", "", "")
	if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	// Forwarding headers do not make a remote client local.
	rec, _ = e.call(remote, "GET", "/meshes", "", "", "X-Forwarded-For", "127.0.0.1", "X-Real-IP", "127.0.0.1", "Forwarded", "for=127.0.0.1")
	if rec.Code != 401 {
		t.Fatalf("X-Forwarded-For: 127.0.0.1 from a remote client: status %d, want 401", rec.Code)
	}
}

func TestBadTokensAreRejected(t *testing.T) {
	e := newAuthnEnv(t, true)
	e.expect(remote, "GET", "/meshes", "Bearer not-a-jwt", 401, "invalid user token: token is malformed")
	e.expect(remote, "GET", "/meshes", "Basic YWRtaW46YWRtaW4=", 401, `must be "Bearer <user token>"`)
	e.expect(remote, "GET", "/meshes", "Bearer ", 401, `must be "Bearer <user token>"`)
	foreign := newAuthnEnv(t, true).token("mallory", tokens.UserAdminGroup)
	e.expect(remote, "GET", "/meshes", "Bearer "+foreign, 401, "signature is invalid")

	tok := e.token("bob", tokens.UserAdminGroup)
	claims, err := e.tokens.ValidateUserToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	e.expect(remote, "GET", "/meshes", "bearer "+tok, 200, "") // the scheme is case-insensitive
	if err := e.tokens.RevokeUserToken(context.Background(), claims.ID); err != nil {
		t.Fatal(err)
	}
	e.expect(remote, "GET", "/meshes", "Bearer "+tok, 401, "revoked")
}

func TestNonAdminTokenIsForbidden(t *testing.T) {
	e := newAuthnEnv(t, true)
	dev := "Bearer " + e.token("dev@example.com", "developers")
	e.expect(remote, "GET", "/meshes", dev, 403, `user "dev@example.com" is not in group mesh-system:admin`)
	// A token decides even from localhost: the caller said who they are.
	e.expect(local4, "GET", "/meshes", dev, 403, "not in group")
	e.expect(local4, "GET", "/meshes", "Bearer garbage", 401, "malformed")
}

func TestLocalhostIsAdmin(t *testing.T) {
	e := newAuthnEnv(t, true)
	for _, addr := range []string{local4, "127.8.9.10:1", local6, mapped} {
		e.expect(addr, "GET", "/meshes", "", 200, "")
	}
	rec, _ := e.call(local4, "PUT", "/meshes/m2", "", `{"type":"Mesh","name":"m2"}`)
	if rec.Code != 201 {
		t.Fatalf("PUT from localhost: %d %s", rec.Code, rec.Body)
	}
	// Unix sockets and unparsable addresses are not loopback.
	e.expect("@", "GET", "/meshes", "", 401, "needs an admin user token")

	off := newAuthnEnv(t, false)
	off.expect(local4, "GET", "/meshes", "", 401, "localhostIsAdmin is off")
	off.expect(local6, "GET", "/meshes", "Bearer "+off.token("admin", tokens.UserAdminGroup), 200, "")
}

func TestHealthEndpointsStayOpen(t *testing.T) {
	e := newAuthnEnv(t, false)
	for _, p := range []string{"/ready", "/healthy"} {
		e.expect(remote, "GET", p, "", 200, "")
	}
}

func TestIssueUserToken(t *testing.T) {
	e := newAuthnEnv(t, true)
	admin := "Bearer " + e.token("alice", tokens.UserAdminGroup)
	body := `{"name":"john.doe@example.com","groups":["users","ops"],"validFor":"24h"}`

	for _, tc := range []struct {
		addr, authz string
		status      int
	}{
		{remote, "", 401},
		{remote, "Bearer " + e.token("dev", "developers"), 403},
		{remote, admin, 200},
		{local4, "", 200},
	} {
		rec, _ := e.call(tc.addr, "POST", "/tokens/user", tc.authz, body)
		if rec.Code != tc.status {
			t.Fatalf("POST /tokens/user from %s (%.20q): %d, want %d: %s", tc.addr, tc.authz, rec.Code, tc.status, rec.Body)
		}
		if tc.status != 200 {
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
			t.Fatalf("Content-Type = %q, want text/plain", ct)
		}
		claims, err := e.tokens.ValidateUserToken(context.Background(), rec.Body.String())
		if err != nil {
			t.Fatalf("the issued token does not validate: %v", err)
		}
		left := time.Until(claims.ExpiresAt.Time)
		if claims.Name != "john.doe@example.com" || !slices.Equal(claims.Groups, []string{"users", "ops"}) || left > 24*time.Hour || left < 23*time.Hour {
			t.Fatalf("claims = %+v (expires in %v)", claims, left)
		}
		// The new token works, but john is no admin.
		e.expect(remote, "GET", "/meshes", "Bearer "+rec.Body.String(), 403, "john.doe@example.com")
	}
}

func TestIssueUserTokenValidation(t *testing.T) {
	e := newAuthnEnv(t, true)
	for body, want := range map[string][]string{
		`{}`:                             {"name", "validFor"},
		`{"name":"x","validFor":"soon"}`: {"validFor"},
		`{"name":"x","validFor":"-1h"}`:  {"validFor"},
		`{"name":"x","groups":[""],"validFor":"1h"}`: {"groups[0]"},
	} {
		rec, out := e.call(local4, "POST", "/tokens/user", "", body)
		if rec.Code != 400 || !slices.Equal(invalidFields(out), want) {
			t.Errorf("%s: status %d, fields %v; want 400 %v: %s", body, rec.Code, invalidFields(out), want, rec.Body)
		}
	}
	rec, _ := e.call(local4, "POST", "/tokens/user", "", `not json`)
	if rec.Code != 400 {
		t.Errorf("a non-JSON body: %d", rec.Code)
	}
}

func TestWithoutAuthnEverythingIsOpen(t *testing.T) {
	mgr := manager.New(memory.New(), kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	h := apiserver.New(mgr, apiserver.Info{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()
	req := httptest.NewRequest("GET", "/meshes", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	req = httptest.NewRequest("POST", "/tokens/user", strings.NewReader(`{"name":"x","validFor":"1h"}`))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == 200 {
		t.Fatal("POST /tokens/user issued a token without a token service")
	}
}

func TestServeTLS(t *testing.T) {
	e := newAuthnEnv(t, true)
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "api-server.crt"), filepath.Join(dir, "api-server.key")
	if err := tlscert.Ensure(crt, key, "trellis-cp api server", nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := apiserver.LoadTLSConfig(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.api.ServeTLS(ctx, ln, cfg, time.Second) }()

	pem, _ := os.ReadFile(crt)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	url := "https://" + ln.Addr().String()
	resp, err := client.Get(url + "/meshes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("GET /meshes over TLS from localhost: %d %s", resp.StatusCode, resp.Proto)
	}
	// Without the CA the certificate is refused.
	if _, err := http.Get(url + "/ready"); err == nil {
		t.Fatal("an unknown self-signed certificate was accepted")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ServeTLS did not return after the context ended")
	}
}
