package kds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// ZoneInsightKind is the store-only kind of zone insights: one record per
// zone (named after it) at the global control plane, telling when the zone
// connected and what its KDS streams did (Kuma's ZoneInsight).
const ZoneInsightKind = "ZoneInsight"

// maxZoneSubscriptions is how many past connections a zone insight keeps.
const maxZoneSubscriptions = 5

// ZoneInsight is the connection history of one zone, oldest first.
type ZoneInsight struct {
	Subscriptions []ZoneSubscription `json:"subscriptions"`
}

// ZoneSubscription is one connection of a zone control plane.
type ZoneSubscription struct {
	ID               string     `json:"id"`
	GlobalInstanceID string     `json:"globalInstanceId"`
	ZoneInstanceID   string     `json:"zoneInstanceId,omitempty"`
	ConnectTime      time.Time  `json:"connectTime"`
	DisconnectTime   *time.Time `json:"disconnectTime,omitempty"`
	// Status counts both streams' responses (sent by the global on
	// GlobalToZoneSync, received on ZoneToGlobalSync).
	Status StatsSnapshot `json:"status"`
}

// Connected reports whether the newest subscription is open.
func (z *ZoneInsight) Connected() bool {
	n := len(z.Subscriptions)
	return n > 0 && z.Subscriptions[n-1].DisconnectTime == nil
}

// ReadZoneInsight returns the insight of zone, or nil when it never
// connected.
func ReadZoneInsight(ctx context.Context, st store.Store, zone string) (*ZoneInsight, error) {
	rec, err := st.Get(ctx, store.Key{Kind: ZoneInsightKind, Name: zone})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var zi ZoneInsight
	if err := json.Unmarshal(rec.Spec, &zi); err != nil {
		return nil, fmt.Errorf("ZoneInsight %s: %w", zone, err)
	}
	return &zi, nil
}

// updateZoneInsight applies f to zone's insight (created when missing),
// retrying on concurrent writes.
func updateZoneInsight(ctx context.Context, st store.Store, zone string, f func(*ZoneInsight)) error {
	key := store.Key{Kind: ZoneInsightKind, Name: zone}
	for range 5 {
		rec, err := st.Get(ctx, key)
		var zi ZoneInsight
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = nil
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(rec.Spec, &zi); err != nil {
				zi = ZoneInsight{} // unreadable: start over
			}
		}
		f(&zi)
		if n := len(zi.Subscriptions); n > maxZoneSubscriptions {
			zi.Subscriptions = zi.Subscriptions[n-maxZoneSubscriptions:]
		}
		spec, err := json.Marshal(&zi)
		if err != nil {
			return err
		}
		if rec == nil {
			err = st.Create(ctx, &store.Record{Kind: ZoneInsightKind, Name: zone, Spec: spec})
			if errors.Is(err, store.ErrAlreadyExists) {
				continue
			}
			return err
		}
		err = st.Update(ctx, &store.Record{Kind: ZoneInsightKind, Name: zone, Spec: spec, Labels: rec.Labels, Version: rec.Version})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		return err
	}
	return fmt.Errorf("ZoneInsight %s: gave up after concurrent modifications: %w", zone, store.ErrConflict)
}

// subscription returns the subscription id of zi, nil when absent.
func (zi *ZoneInsight) subscription(id string) *ZoneSubscription {
	for i := range zi.Subscriptions {
		if zi.Subscriptions[i].ID == id {
			return &zi.Subscriptions[i]
		}
	}
	return nil
}
