package kds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// openStream opens GlobalToZoneSync as zone with token and returns the
// status the global answers (nil when it accepts the zone).
func openStream(t *testing.T, g *global, zone, token string) error {
	t.Helper()
	pemData, err := os.ReadFile(g.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md := []string{kds.MDZone, zone}
	if token != "" {
		md = append(md, kds.MDAuthorization, "Bearer "+token)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, md...)
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, kds.MethodGlobalToZone)
	if err != nil {
		return err
	}
	h, err := s.Header()
	if err != nil {
		return err
	}
	if len(h.Get(kds.MDAccepted)) > 0 {
		return nil
	}
	return s.RecvMsg(new(discovery.DeltaDiscoveryResponse))
}

func TestZoneTokensAreCheckedOnEveryStream(t *testing.T) {
	gst := memoryStore(t)
	g := startGlobal(t, gst)
	ctx := context.Background()
	issue := func(zone string, validFor time.Duration) string {
		tok, err := g.zt.IssueZoneToken(ctx, zone, validFor)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expired := tokens.NewZoneTokens(gst)
	expired.SetClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	old, err := expired.IssueZoneToken(ctx, "zone-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherGlobal := startGlobal(t, memoryStore(t))
	foreign, err := otherGlobal.zt.IssueZoneToken(ctx, "zone-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, zone, token string
		code              codes.Code
		detail            string
	}{
		{"valid", "zone-1", issue("zone-1", time.Hour), codes.OK, ""},
		{"no token", "zone-1", "", codes.Unauthenticated, "no zone token"},
		{"expired", "zone-1", old, codes.Unauthenticated, "expired"},
		{"wrong zone", "zone-2", issue("zone-1", time.Hour), codes.Unauthenticated, `for zone "zone-1", not "zone-2"`},
		{"another global's key", "zone-1", foreign, codes.Unauthenticated, "invalid zone token"},
		{"garbage", "zone-1", "not.a.jwt", codes.Unauthenticated, "invalid zone token"},
		{"bad zone name", "Zone 1!", issue("Zone 1!", time.Hour), codes.InvalidArgument, "zone name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := openStream(t, g, tc.zone, tc.token)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if err != nil && !contains(status.Convert(err).Message(), tc.detail) {
				t.Fatalf("message %q lacks %q", status.Convert(err).Message(), tc.detail)
			}
		})
	}
	// The accepted zone was recorded; disabling it refuses its next stream.
	z := get(t, gst, "Zone", "", "zone-1")
	if z == nil {
		t.Fatal("no Zone zone-1 after its stream was accepted")
	}
	disabled, _ := json.Marshal(map[string]any{"enabled": false})
	put(t, gst, "Zone", "", "zone-1", string(disabled), nil)
	err = openStream(t, g, "zone-1", issue("zone-1", time.Hour))
	if status.Code(err) != codes.PermissionDenied || !contains(status.Convert(err).Message(), "disabled") {
		t.Fatalf("a disabled zone: %v", err)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestDisablingAConnectedZoneClosesItsStreams(t *testing.T) {
	gst := memoryStore(t)
	put(t, gst, "Mesh", "", "m1", `{}`, nil)
	g := startGlobal(t, gst)
	zst := memoryStore(t)
	z := startZone(t, g, "zone-1", zst)
	eventually(t, 5*time.Second, wantNames(t, zst, "Mesh", "/m1"))
	if !z.client.Connected() {
		t.Fatal("zone-1 is not connected")
	}
	disabled, _ := json.Marshal(map[string]any{"enabled": false})
	put(t, gst, "Zone", "", "zone-1", string(disabled), nil)
	eventually(t, 5*time.Second, func() error {
		if z.client.Connected() {
			return errors.New("zone-1 still connected after being disabled")
		}
		return nil
	})
	// It stays out (every reconnection is refused) and nothing syncs.
	put(t, gst, "Mesh", "", "m2", `{}`, nil)
	time.Sleep(time.Second)
	if z.client.Connected() || len(names(t, zst, "Mesh")) != 1 {
		t.Fatalf("a disabled zone synced: connected=%v meshes %v", z.client.Connected(), names(t, zst, "Mesh"))
	}
	// Enabled again, it reconnects and catches up.
	put(t, gst, "Zone", "", "zone-1", `{"enabled":true}`, nil)
	eventually(t, 15*time.Second, wantNames(t, zst, "Mesh", "/m1", "/m2"))
}
