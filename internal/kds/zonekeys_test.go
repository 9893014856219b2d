package kds_test

import (
	"context"
	"testing"

	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// The global sends the public part of its zone-token signing key to zones,
// never the private key.
func TestGlobalToZoneSendsOnlyPublicZoneKeys(t *testing.T) {
	st := memoryStore(t)
	ctx := context.Background()
	if err := tokens.NewZoneTokens(st).EnsureZoneSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	flow := kds.GlobalToZone(kinds.Registry(), "zone-1")
	for name, want := range map[string]bool{tokens.ZoneSigningKeyName(1): false, tokens.ZonePublicKeyName(1): true} {
		rec, err := st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, sent := flow.Map(rec); sent != want {
			t.Errorf("%s sent to zones: %v, want %v", name, sent, want)
		}
	}
}
