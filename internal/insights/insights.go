// Package insights keeps what the control plane knows about connected
// proxies (DataplaneInsight, as Kuma names it): which control-plane
// instance each proxy is connected to, since when, the last config version
// it ACKed and its last NACK. Insights live in the store beside the
// Dataplanes, so every instance sharing a store sees them, and deleting a
// mesh deletes them.
package insights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Kind is the store kind of insight records. It is not an API resource
// kind: the API shows insights inside dataplane overviews.
const Kind = "DataplaneInsight"

// MaxSubscriptions is how many past connections an insight remembers.
const MaxSubscriptions = 5

// DataplaneInsight is the connection history of one proxy.
type DataplaneInsight struct {
	// RegisteredByProxy is set when the control plane created the
	// Dataplane from the proxy's own description; such a Dataplane is
	// removed a while after the proxy disconnects.
	RegisteredByProxy bool `json:"registeredByProxy,omitempty"`
	// Subscriptions are the proxy's xDS streams, oldest first.
	Subscriptions []Subscription `json:"subscriptions"`
	// MTLS describes the proxy's workload certificate, when its mesh has
	// mTLS (Kuma's DataplaneInsight.mTLS).
	MTLS *MTLS `json:"mTLS,omitempty"`
}

// MTLS is what the control plane knows of a proxy's workload certificate.
type MTLS struct {
	// CertificateExpirationTime is when the newest certificate expires.
	CertificateExpirationTime *time.Time `json:"certificateExpirationTime,omitempty"`
	// LastCertificateRegeneration is when the newest certificate was issued.
	LastCertificateRegeneration *time.Time `json:"lastCertificateRegeneration,omitempty"`
	// CertificateRegenerations counts the certificates sent to the proxy.
	CertificateRegenerations uint32 `json:"certificateRegenerations"`
	// IssuedBackend is the mTLS backend (CA) that issued the certificate.
	IssuedBackend string `json:"issuedBackend,omitempty"`
	// SupportedBackends are the backends whose CAs the proxy trusts.
	SupportedBackends []string `json:"supportedBackends,omitempty"`
}

// Subscription is one xDS stream of a proxy.
type Subscription struct {
	ID                     string            `json:"id"`
	ControlPlaneInstanceID string            `json:"controlPlaneInstanceId"`
	ConnectTime            time.Time         `json:"connectTime"`
	DisconnectTime         *time.Time        `json:"disconnectTime,omitempty"`
	Status                 Status            `json:"status"`
	Version                map[string]string `json:"version,omitempty"`
}

// Status counts what was sent on a stream and what the proxy said.
type Status struct {
	LastUpdateTime time.Time `json:"lastUpdateTime"`
	Total          Totals    `json:"total"`
	// LastACKedVersion is the last config version the proxy accepted.
	LastACKedVersion string `json:"lastAckedVersion,omitempty"`
	// LastNACK is the proxy's last rejection, if any.
	LastNACK *NACK `json:"lastNack,omitempty"`
}

// Totals are per-stream counters.
type Totals struct {
	ResponsesSent         uint64 `json:"responsesSent"`
	ResponsesAcknowledged uint64 `json:"responsesAcknowledged"`
	ResponsesRejected     uint64 `json:"responsesRejected"`
}

// NACK is one rejected config.
type NACK struct {
	TypeURL string    `json:"typeUrl"`
	Version string    `json:"version"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
}

// Online reports whether the proxy's newest stream is still open.
func (d *DataplaneInsight) Online() bool {
	n := len(d.Subscriptions)
	return n > 0 && d.Subscriptions[n-1].DisconnectTime == nil
}

// Last returns the newest subscription, or nil.
func (d *DataplaneInsight) Last() *Subscription {
	if len(d.Subscriptions) == 0 {
		return nil
	}
	return &d.Subscriptions[len(d.Subscriptions)-1]
}

// Find returns the subscription with id, or nil.
func (d *DataplaneInsight) Find(id string) *Subscription {
	for i := range d.Subscriptions {
		if d.Subscriptions[i].ID == id {
			return &d.Subscriptions[i]
		}
	}
	return nil
}

// Add appends a subscription, forgetting the oldest past MaxSubscriptions.
func (d *DataplaneInsight) Add(s Subscription) {
	d.Subscriptions = append(d.Subscriptions, s)
	if n := len(d.Subscriptions); n > MaxSubscriptions {
		d.Subscriptions = append([]Subscription(nil), d.Subscriptions[n-MaxSubscriptions:]...)
	}
}

// Get reads a proxy's insight; a proxy that never connected has an empty one.
func Get(ctx context.Context, st store.Store, mesh, name string) (*DataplaneInsight, error) {
	rec, err := st.Get(ctx, store.Key{Kind: Kind, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return &DataplaneInsight{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decode(rec)
}

// List reads every insight of a mesh ("" for all meshes), keyed by mesh/name.
func List(ctx context.Context, st store.Store, mesh string) (map[store.Key]*DataplaneInsight, error) {
	page, err := st.List(ctx, store.Query{Kind: Kind, Mesh: mesh})
	if err != nil {
		return nil, err
	}
	out := make(map[store.Key]*DataplaneInsight, len(page.Items))
	for _, rec := range page.Items {
		in, err := decode(rec)
		if err != nil {
			return nil, err
		}
		out[store.Key{Mesh: rec.Mesh, Name: rec.Name}] = in
	}
	return out, nil
}

func decode(rec *store.Record) (*DataplaneInsight, error) {
	var in DataplaneInsight
	if err := json.Unmarshal(rec.Spec, &in); err != nil {
		return nil, fmt.Errorf("decoding the insight of %s/%s: %w", rec.Mesh, rec.Name, err)
	}
	return &in, nil
}

// maxUpdateAttempts bounds retries when instances update one insight at once.
const maxUpdateAttempts = 8

// Update applies fn to a proxy's insight and stores it, retrying on
// concurrent modification. It creates the insight if needed; it fails with
// store.ErrMeshNotFound when the mesh is gone.
func Update(ctx context.Context, st store.Store, mesh, name string, fn func(*DataplaneInsight)) error {
	key := store.Key{Kind: Kind, Mesh: mesh, Name: name}
	for range maxUpdateAttempts {
		rec, err := st.Get(ctx, key)
		in := &DataplaneInsight{}
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = nil
		case err != nil:
			return err
		default:
			if in, err = decode(rec); err != nil {
				return err
			}
		}
		fn(in)
		spec, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if rec == nil {
			err = st.Create(ctx, &store.Record{Kind: Kind, Mesh: mesh, Name: name, Spec: spec})
		} else {
			rec.Spec = spec
			err = st.Update(ctx, rec)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		return err
	}
	return fmt.Errorf("insight of %s/%s: %w after %d attempts", mesh, name, store.ErrConflict, maxUpdateAttempts)
}

// Delete removes a proxy's insight; a missing one is not an error.
func Delete(ctx context.Context, st store.Store, mesh, name string) error {
	err := st.Delete(ctx, store.Key{Kind: Kind, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
