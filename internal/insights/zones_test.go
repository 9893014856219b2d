package insights_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

func TestZoneInsightWriters(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	zi, err := insights.GetZone(ctx, st, "zone-1")
	if err != nil || zi.Online() || zi.Last() != nil {
		t.Fatalf("a zone that never connected: %+v %v", zi, err)
	}
	if err := insights.ZoneConnected(ctx, st, "zone-1", insights.ZoneConnection{}); err == nil {
		t.Error("a connection without a subscription id is accepted")
	}
	if err := insights.ZoneConnected(ctx, st, "", insights.ZoneConnection{SubscriptionID: "a"}); err == nil {
		t.Error("a zone without a name is accepted")
	}
	// A global that died leaves a subscription open; the next connection
	// closes it.
	for i := range insights.MaxSubscriptions + 2 {
		if err := insights.ZoneConnected(ctx, st, "zone-1", insights.ZoneConnection{SubscriptionID: fmt.Sprint("s", i)}); err != nil {
			t.Fatal(err)
		}
	}
	zi, _ = insights.GetZone(ctx, st, "zone-1")
	if len(zi.Subscriptions) != insights.MaxSubscriptions || zi.Subscriptions[0].ID != "s2" || zi.Last().ID != "s6" {
		t.Fatalf("subscriptions kept: %+v", zi.Subscriptions)
	}
	for _, s := range zi.Subscriptions[:len(zi.Subscriptions)-1] {
		if s.DisconnectTime == nil {
			t.Errorf("older subscription %s still open", s.ID)
		}
	}
	if !zi.Online() || zi.HealthCheck == nil {
		t.Errorf("zone-1 not online after connecting: %+v", zi)
	}
	// Counters of an unknown subscription are dropped; known ones add up.
	if err := insights.ZoneSynced(ctx, st, "zone-1", "gone", insights.ZoneSync{Kind: "Mesh", Sent: 5}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := insights.ZoneSynced(ctx, st, "zone-1", "s6", insights.ZoneSync{Kind: "Mesh", Sent: 1, Acknowledged: 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	zi, _ = insights.GetZone(ctx, st, "zone-1")
	if got := zi.Last().Status.Total; got.ResponsesSent != 8 || got.ResponsesAcknowledged != 8 || zi.Last().Status.Stat["Mesh"].ResponsesSent != 8 {
		t.Errorf("counters after 8 concurrent batches: %+v", zi.Last().Status)
	}
	if err := insights.ZoneDisconnected(ctx, st, "zone-1", "s6"); err != nil {
		t.Fatal(err)
	}
	zi, _ = insights.GetZone(ctx, st, "zone-1")
	if zi.Online() {
		t.Error("zone-1 online after its stream ended")
	}
	all, err := insights.ListZones(ctx, st)
	if err != nil || len(all) != 1 || all["zone-1"] == nil {
		t.Errorf("ListZones = %v %v", all, err)
	}
	if err := insights.DeleteZone(ctx, st, "zone-1"); err != nil {
		t.Fatal(err)
	}
	if err := insights.DeleteZone(ctx, st, "zone-1"); err != nil {
		t.Errorf("deleting a missing zone insight: %v", err)
	}
}
