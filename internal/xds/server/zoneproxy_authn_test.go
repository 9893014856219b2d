package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/tokens"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

// newGlobalKeys returns zone tokens signed by a fresh "global" store's key.
func newGlobalKeys(t *testing.T) (*tokens.ZoneTokens, store.Store) {
	t.Helper()
	st := memory.New()
	zt := tokens.NewZoneTokens(st)
	if err := zt.EnsureZoneSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	return zt, st
}

// copyPublicKey copies the global's public zone-token key into dst, as KDS
// does (the private key never travels).
func copyPublicKey(t *testing.T, src, dst store.Store) {
	t.Helper()
	ctx := context.Background()
	if err := dst.Create(ctx, &store.Record{Kind: kinds.GlobalSecret, Name: tokens.ZonePublicKeyName(1), Spec: pubSpec(t, src)}); err != nil {
		t.Fatal(err)
	}
}

// pubSpec is the spec of the global's public key 1.
func pubSpec(t *testing.T, st store.Store) []byte {
	t.Helper()
	rec, err := st.Get(context.Background(), store.Key{Kind: kinds.GlobalSecret, Name: tokens.ZonePublicKeyName(1)})
	if err != nil {
		t.Fatal(err)
	}
	return rec.Spec
}

// ingressWithToken opens an ADS stream for zone ingress zi-2 presenting
// token and returns the first response's error (nil when served).
func ingressWithToken(t *testing.T, c *cp, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, server.AuthorizationMetadata, "Bearer "+token)
	}
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&discoveryv3.DiscoveryRequest{Node: ingressNode(t), TypeUrl: resourcev3.ListenerType})
	_, err = stream.Recv()
	return err
}

func issue(t *testing.T, zt *tokens.ZoneTokens, zone string, scope []string, validFor time.Duration) string {
	t.Helper()
	tok, err := zt.IssueZoneTokenScoped(context.Background(), zone, scope, validFor)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A zone control plane authenticates zone proxies with zone tokens
// verified by the public key synced from the global: the scope must hold
// the proxy type and the zone must be the control plane's.
func TestZoneProxyTokenOnZone(t *testing.T) {
	global, globalSt := newGlobalKeys(t)
	c := startCP(t, time.Minute, func(cfg *server.Config) { cfg.Authn, cfg.Zone = server.AuthnDPToken, "zone-2" })
	// Before KDS brought the public key, the proxy is told to retry.
	err := ingressWithToken(t, c, issue(t, global, "zone-2", nil, time.Hour))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no zone-token signing key or public key yet") {
		t.Fatalf("before the keys synced: %v, want Unavailable naming the missing keys", err)
	}
	copyPublicKey(t, globalSt, c.mgr.Store())
	other, _ := newGlobalKeys(t)
	expired := tokens.NewZoneTokens(globalSt)
	expired.SetClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })

	if err := ingressWithToken(t, c, issue(t, global, "zone-2", []string{tokens.ZoneScopeIngress}, time.Hour)); err != nil {
		t.Fatalf("a valid ingress token was refused: %v", err)
	}
	for name, tc := range map[string]struct{ token, reason string }{
		"no token":       {"", "no token was presented"},
		"scope mismatch": {issue(t, global, "zone-2", []string{tokens.ZoneScopeEgress, tokens.ZoneScopeCP}, time.Hour), `lacks "ingress"`},
		"wrong zone":     {issue(t, global, "zone-1", []string{tokens.ZoneScopeIngress}, time.Hour), `for zone "zone-1", not this control plane's zone "zone-2"`},
		"expired":        {issue(t, expired, "zone-2", nil, time.Hour), "expired"},
		"unknown key":    {issue(t, other, "zone-2", nil, time.Hour), "invalid zone token"},
		"not a jwt":      {"garbage", "invalid zone token"},
	} {
		err := ingressWithToken(t, c, tc.token)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v, want Unauthenticated naming %q", name, err, tc.reason)
		}
	}
	// A token naming a key serial the zone does not know is refused.
	if err := c.mgr.Store().Create(context.Background(), &store.Record{Kind: kinds.GlobalSecret, Name: tokens.ZonePublicKeyName(2), Spec: pubSpec(t, globalSt)}); err != nil {
		t.Fatal(err)
	}
	if err := c.mgr.Store().Delete(context.Background(), store.Key{Kind: kinds.GlobalSecret, Name: tokens.ZonePublicKeyName(1)}); err != nil {
		t.Fatal(err)
	}
	err = ingressWithToken(t, c, issue(t, global, "zone-2", nil, time.Hour))
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "signing key 1 is unknown here") {
		t.Errorf("a token of a key the zone lacks: %v, want Unauthenticated naming the unknown key", err)
	}
}

// A standalone control plane signs zone tokens with its own key and
// accepts them for any zone.
func TestZoneProxyTokenStandalone(t *testing.T) {
	c := startCP(t, time.Minute, func(cfg *server.Config) { cfg.Authn = server.AuthnDPToken })
	zt := tokens.NewZoneTokens(c.mgr.Store())
	if err := zt.EnsureZoneSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ingressWithToken(t, c, issue(t, zt, "anywhere", []string{tokens.ZoneScopeIngress}, time.Hour)); err != nil {
		t.Fatalf("a valid ingress token was refused: %v", err)
	}
	err := ingressWithToken(t, c, issue(t, zt, "anywhere", []string{tokens.ZoneScopeEgress}, time.Hour))
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), `lacks "ingress"`) {
		t.Errorf("an egress-only token for an ingress: %v, want Unauthenticated", err)
	}
}
