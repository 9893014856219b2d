package apiclient_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

// tokenAPI is an HTTPS stand-in that wants "Bearer good" (an admin) or
// "Bearer dev" (not an admin) and issues tokens.
func tokenAPI(t *testing.T) (srv *httptest.Server, caFile string, lastBody *map[string]any) {
	t.Helper()
	var body map[string]any
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
		case "Bearer dev":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"type":"/std-errors","status":403,"title":"Access Denied","detail":"not an admin"}`))
			return
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"type":"/std-errors","status":401,"title":"Unauthenticated","detail":"send a token"}`))
			return
		}
		if r.Method == "POST" && r.URL.Path == "/tokens/user" {
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("issued.jwt.token"))
			return
		}
		_, _ = w.Write([]byte(`{"product":"Trellis","version":"1"}`))
	})
	srv = httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, &body
}

func tlsClient(t *testing.T, url, caFile string, skipVerify bool, token string) *apiclient.Client {
	t.Helper()
	cfg, err := apiclient.TLSConfig(caFile, skipVerify)
	if err != nil {
		t.Fatal(err)
	}
	c := apiclient.New(url, apiclient.NewHTTPClient(5*time.Second, cfg))
	c.SetToken(token)
	return c
}

func TestTokenAndCA(t *testing.T) {
	ctx := context.Background()
	srv, caFile, body := tokenAPI(t)

	if _, err := tlsClient(t, srv.URL, caFile, false, "good").Index(ctx); err != nil {
		t.Fatalf("with the CA file and a token: %v", err)
	}
	if _, err := tlsClient(t, srv.URL, "", true, "good").Index(ctx); err != nil {
		t.Fatalf("with --skip-verify: %v", err)
	}
	var te *apiclient.TransportError
	if _, err := tlsClient(t, srv.URL, "", false, "good").Index(ctx); !errors.As(err, &te) {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	if _, err := tlsClient(t, srv.URL, caFile, false, "").Index(ctx); !errors.Is(err, apiclient.ErrUnauthenticated) {
		t.Fatalf("without a token: %v", err)
	}
	if _, err := tlsClient(t, srv.URL, caFile, false, "dev").Index(ctx); !errors.Is(err, apiclient.ErrForbidden) || errors.Is(err, apiclient.ErrUnauthenticated) {
		t.Fatalf("with a non-admin token: %v", err)
	}

	tok, err := tlsClient(t, srv.URL, caFile, false, " good\n").IssueUserToken(ctx, "jane", []string{"ops"}, 24*time.Hour)
	if err != nil || tok != "issued.jwt.token" {
		t.Fatalf("IssueUserToken = %q, %v", tok, err)
	}
	if (*body)["name"] != "jane" || (*body)["validFor"] != "24h0m0s" || len((*body)["groups"].([]any)) != 1 {
		t.Fatalf("request body = %v", *body)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	if cfg, err := apiclient.TLSConfig("", false); cfg != nil || err != nil {
		t.Fatalf("no CA, no skip: %v %v; want nil, nil", cfg, err)
	}
	if _, err := apiclient.TLSConfig(filepath.Join(t.TempDir(), "missing.crt"), false); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.crt")
	_ = os.WriteFile(junk, []byte("hello"), 0o600)
	if _, err := apiclient.TLSConfig(junk, false); err == nil {
		t.Fatal("a CA file without PEM was accepted")
	}
}
