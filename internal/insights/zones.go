package insights

// Zone insights: what the global control plane knows about the zone
// control planes connected to its KDS server (Kuma's ZoneInsight).
//
// THE WRITER API FOR THE KDS SERVER (internal/kds, global side). The
// global's KDS server calls, for every zone stream:
//
//	ZoneConnected(ctx, st, zone, ZoneConnection{...})       when a zone's stream is accepted (after the Zone resource is created/updated)
//	ZoneSynced(ctx, st, zone, subscriptionID, ZoneSync{...}) after it sends a batch / gets an ACK or NACK (counters are ADDED)
//	ZoneDisconnected(ctx, st, zone, subscriptionID)          when the stream ends (any reason)
//	ZoneHealthCheck(ctx, st, zone)                           optionally, periodically while the stream is open
//
// All of them create the ZoneInsight when missing, retry on concurrent
// writes, and never fail because the zone has no Zone resource. Call
// ZoneSynced per batch of resources (per response), not per resource: each
// call is one store write. The readers (API /zones+insights, GUI,
// /global-insight) treat a zone as online when its newest subscription has
// no disconnect time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// ZoneKind is the store kind of zone insight records (global scope, one per
// zone, named like the zone). Like DataplaneInsight it is not an API kind:
// the API shows it inside ZoneOverview.
const ZoneKind = "ZoneInsight"

// ZoneInsight is the KDS connection history of one zone control plane.
type ZoneInsight struct {
	// Subscriptions are the zone's KDS streams, oldest first (at most
	// MaxSubscriptions).
	Subscriptions []KDSSubscription `json:"subscriptions,omitempty"`
	// HealthCheck is when the global last heard from the zone.
	HealthCheck *ZoneHealth `json:"healthCheck,omitempty"`
}

// ZoneHealth is Kuma's ZoneInsight.healthCheck.
type ZoneHealth struct {
	Time time.Time `json:"time"`
}

// KDSSubscription is one KDS stream of a zone (Kuma's KDSSubscription).
type KDSSubscription struct {
	ID               string     `json:"id"`
	GlobalInstanceID string     `json:"globalInstanceId"`
	ZoneInstanceID   string     `json:"zoneInstanceId,omitempty"`
	ConnectTime      time.Time  `json:"connectTime"`
	DisconnectTime   *time.Time `json:"disconnectTime,omitempty"`
	Status           KDSStatus  `json:"status"`
	Version          KDSVersion `json:"version"`
	// Config is the zone control plane's configuration (JSON text), as it
	// reported it.
	Config string `json:"config,omitempty"`
	// AuthTokenProvided says whether the zone presented a zone token.
	AuthTokenProvided bool `json:"authTokenProvided,omitempty"`
}

// KDSStatus counts what was sent on a KDS stream, in total and per kind.
type KDSStatus struct {
	LastUpdateTime time.Time            `json:"lastUpdateTime"`
	Total          KDSStats             `json:"total"`
	Stat           map[string]*KDSStats `json:"stat,omitempty"`
}

// KDSStats are one kind's counters (Kuma's KDSServiceStats).
type KDSStats struct {
	ResponsesSent         uint64 `json:"responsesSent"`
	ResponsesAcknowledged uint64 `json:"responsesAcknowledged"`
	ResponsesRejected     uint64 `json:"responsesRejected"`
}

// KDSVersion is the zone's software version (Kuma's Version with kumaCp).
type KDSVersion struct {
	KumaCp CPVersion `json:"kumaCp"`
}

// CPVersion describes a control plane build (Kuma's KumaCpVersion).
type CPVersion struct {
	Version   string `json:"version"`
	GitTag    string `json:"gitTag,omitempty"`
	GitCommit string `json:"gitCommit,omitempty"`
	BuildDate string `json:"buildDate,omitempty"`
	// KumaCpGlobalCompatible: the zone's version can talk to this global.
	KumaCpGlobalCompatible bool `json:"kumaCpGlobalCompatible"`
}

// ZoneConnection describes a newly accepted KDS stream.
type ZoneConnection struct {
	// SubscriptionID identifies the stream (unique per stream, e.g. a UUID).
	SubscriptionID string
	// GlobalInstanceID is the global control plane instance serving it.
	GlobalInstanceID string
	// ZoneInstanceID is the zone control plane instance that dialled.
	ZoneInstanceID string
	// Version is what the zone reported about its build.
	Version CPVersion
	// Config is the zone's configuration as JSON text; may be empty.
	Config string
	// AuthTokenProvided: the zone authenticated with a zone token.
	AuthTokenProvided bool
	// Time is the connect time; zero means now.
	Time time.Time
}

// ZoneSync is one batch of KDS traffic on a stream; counters are added to
// the subscription's totals and to the kind's own counters.
type ZoneSync struct {
	// Kind is the resource kind of the batch ("Dataplane", "MeshTrafficPermission"...).
	Kind string
	// Sent, Acknowledged, Rejected: responses sent, ACKed and NACKed.
	Sent, Acknowledged, Rejected uint64
}

// Online reports whether the zone's newest KDS stream is still open.
func (z *ZoneInsight) Online() bool {
	n := len(z.Subscriptions)
	return n > 0 && z.Subscriptions[n-1].DisconnectTime == nil
}

// Last returns the newest subscription, or nil.
func (z *ZoneInsight) Last() *KDSSubscription {
	if len(z.Subscriptions) == 0 {
		return nil
	}
	return &z.Subscriptions[len(z.Subscriptions)-1]
}

func (z *ZoneInsight) find(id string) *KDSSubscription {
	for i := range z.Subscriptions {
		if z.Subscriptions[i].ID == id {
			return &z.Subscriptions[i]
		}
	}
	return nil
}

// ZoneConnected records a new KDS stream of zone. Streams still marked open
// (left over from a global restart or a lost stream) are closed at c.Time.
func ZoneConnected(ctx context.Context, st store.Store, zone string, c ZoneConnection) error {
	if c.SubscriptionID == "" {
		return fmt.Errorf("zone %q: ZoneConnection.SubscriptionID is empty", zone)
	}
	at := c.Time
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	return UpdateZone(ctx, st, zone, func(z *ZoneInsight) {
		for i := range z.Subscriptions {
			if z.Subscriptions[i].DisconnectTime == nil {
				t := at
				z.Subscriptions[i].DisconnectTime = &t
			}
		}
		z.Subscriptions = append(z.Subscriptions, KDSSubscription{
			ID: c.SubscriptionID, GlobalInstanceID: c.GlobalInstanceID, ZoneInstanceID: c.ZoneInstanceID,
			ConnectTime: at, Status: KDSStatus{LastUpdateTime: at},
			Version: KDSVersion{KumaCp: c.Version}, Config: c.Config, AuthTokenProvided: c.AuthTokenProvided,
		})
		if n := len(z.Subscriptions); n > MaxSubscriptions {
			z.Subscriptions = append([]KDSSubscription(nil), z.Subscriptions[n-MaxSubscriptions:]...)
		}
		z.HealthCheck = &ZoneHealth{Time: at}
	})
}

// ZoneSynced adds one batch of KDS traffic to the subscription's counters.
// An unknown subscription (forgotten, or never connected) is ignored.
func ZoneSynced(ctx context.Context, st store.Store, zone, subscriptionID string, s ZoneSync) error {
	now := time.Now().UTC()
	return UpdateZone(ctx, st, zone, func(z *ZoneInsight) {
		sub := z.find(subscriptionID)
		if sub == nil {
			return
		}
		sub.Status.LastUpdateTime = now
		sub.Status.Total.add(s)
		if s.Kind != "" {
			if sub.Status.Stat == nil {
				sub.Status.Stat = map[string]*KDSStats{}
			}
			k := sub.Status.Stat[s.Kind]
			if k == nil {
				k = &KDSStats{}
				sub.Status.Stat[s.Kind] = k
			}
			k.add(s)
		}
		z.HealthCheck = &ZoneHealth{Time: now}
	})
}

func (k *KDSStats) add(s ZoneSync) {
	k.ResponsesSent += s.Sent
	k.ResponsesAcknowledged += s.Acknowledged
	k.ResponsesRejected += s.Rejected
}

// ZoneDisconnected marks the subscription closed now.
func ZoneDisconnected(ctx context.Context, st store.Store, zone, subscriptionID string) error {
	now := time.Now().UTC()
	return UpdateZone(ctx, st, zone, func(z *ZoneInsight) {
		if sub := z.find(subscriptionID); sub != nil && sub.DisconnectTime == nil {
			sub.DisconnectTime = &now
		}
	})
}

// ZoneHealthCheck records that the global heard from the zone now.
func ZoneHealthCheck(ctx context.Context, st store.Store, zone string) error {
	now := time.Now().UTC()
	return UpdateZone(ctx, st, zone, func(z *ZoneInsight) { z.HealthCheck = &ZoneHealth{Time: now} })
}

// GetZone reads a zone's insight; a zone that never connected has an empty one.
func GetZone(ctx context.Context, st store.Store, zone string) (*ZoneInsight, error) {
	rec, err := st.Get(ctx, store.Key{Kind: ZoneKind, Name: zone})
	if errors.Is(err, store.ErrNotFound) {
		return &ZoneInsight{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeZone(rec)
}

// ListZones reads every zone insight, keyed by zone name.
func ListZones(ctx context.Context, st store.Store) (map[string]*ZoneInsight, error) {
	page, err := st.List(ctx, store.Query{Kind: ZoneKind})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ZoneInsight, len(page.Items))
	for _, rec := range page.Items {
		z, err := decodeZone(rec)
		if err != nil {
			return nil, err
		}
		out[rec.Name] = z
	}
	return out, nil
}

func decodeZone(rec *store.Record) (*ZoneInsight, error) {
	var z ZoneInsight
	if err := json.Unmarshal(rec.Spec, &z); err != nil {
		return nil, fmt.Errorf("decoding the insight of zone %s: %w", rec.Name, err)
	}
	return &z, nil
}

// UpdateZone applies fn to a zone's insight and stores it, retrying on
// concurrent modification; it creates the insight if needed.
func UpdateZone(ctx context.Context, st store.Store, zone string, fn func(*ZoneInsight)) error {
	if zone == "" {
		return errors.New("zone insight: the zone name is empty")
	}
	key := store.Key{Kind: ZoneKind, Name: zone}
	for range maxUpdateAttempts {
		rec, err := st.Get(ctx, key)
		z := &ZoneInsight{}
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = nil
		case err != nil:
			return err
		default:
			if z, err = decodeZone(rec); err != nil {
				return err
			}
		}
		fn(z)
		spec, err := json.Marshal(z)
		if err != nil {
			return err
		}
		if rec == nil {
			err = st.Create(ctx, &store.Record{Kind: ZoneKind, Name: zone, Spec: spec})
		} else {
			rec.Spec = spec
			err = st.Update(ctx, rec)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		return err
	}
	return fmt.Errorf("insight of zone %s: %w after %d attempts", zone, store.ErrConflict, maxUpdateAttempts)
}

// DeleteZone removes a zone's insight (when its Zone is deleted); a missing
// one is not an error.
func DeleteZone(ctx context.Context, st store.Store, zone string) error {
	err := st.Delete(ctx, store.Key{Kind: ZoneKind, Name: zone})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
