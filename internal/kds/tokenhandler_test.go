package kds_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

func TestZoneTokenHandler(t *testing.T) {
	st := memoryStore(t)
	zt := tokens.NewZoneTokens(st)
	if err := zt.EnsureZoneSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(kds.ZoneTokenHandler(zt, quietLog()))
	defer srv.Close()
	post := func(body string) (int, string) {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, tok := post(`{"zone":"zone-1","scope":["cp"],"validFor":"1h"}`)
	if code != http.StatusOK {
		t.Fatalf("issue: %d %s", code, tok)
	}
	if err := zt.ValidateZoneToken(context.Background(), tok, "zone-1"); err != nil {
		t.Fatalf("the issued token does not validate: %v", err)
	}
	// Scopes: an ingress-only token identifies an ingress, not a zone CP;
	// a token without a scope carries all three (Kuma's default).
	code, tok = post(`{"zone":"zone-1","scope":["ingress"],"validFor":"1h"}`)
	if code != http.StatusOK {
		t.Fatalf("issue ingress: %d %s", code, tok)
	}
	if _, err := zt.ValidateZoneProxyToken(context.Background(), tok, "zone-1", tokens.ZoneScopeIngress); err != nil {
		t.Errorf("the ingress token does not validate for an ingress: %v", err)
	}
	if err := zt.ValidateZoneToken(context.Background(), tok, "zone-1"); err == nil {
		t.Error("an ingress-only token was accepted for a zone control plane")
	}
	code, tok = post(`{"zone":"zone-1"}`)
	if code != http.StatusOK {
		t.Fatalf("issue default: %d %s", code, tok)
	}
	for _, scope := range []string{tokens.ZoneScopeIngress, tokens.ZoneScopeEgress} {
		if _, err := zt.ValidateZoneProxyToken(context.Background(), tok, "zone-1", scope); err != nil {
			t.Errorf("a default-scope token is refused for %s: %v", scope, err)
		}
	}
	if err := zt.ValidateZoneToken(context.Background(), tok, "zone-1"); err != nil {
		t.Errorf("a default-scope token is refused for a zone CP: %v", err)
	}
	for body, field := range map[string]string{
		`{"validFor":"1h"}`:                  `"field":"zone"`,
		`{"zone":"Bad Name"}`:                `"field":"zone"`,
		`{"zone":"z","validFor":"soon"}`:     `"field":"validFor"`,
		`{"zone":"z","validFor":"-1h"}`:      `"field":"validFor"`,
		`{"zone":"z","scope":["dataplane"]}`: `"field":"scope[0]"`,
		`not json`:                           `the body must be a JSON object`,
	} {
		code, out := post(body)
		if code != http.StatusBadRequest || !strings.Contains(out, field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, out, field)
		}
	}
}
