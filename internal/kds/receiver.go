package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/trellis-mesh/trellis/internal/store"
)

// RequestStream is the receiver's end of a stream: it sends requests and
// receives responses.
type RequestStream interface {
	Send(*discovery.DeltaDiscoveryRequest) error
	Recv() (*discovery.DeltaDiscoveryResponse, error)
}

// Receiver applies one flow's responses to a store.
type Receiver struct {
	st    store.Store
	flow  *Flow
	log   *slog.Logger
	stats *Stats
}

// NewReceiver returns a receiver writing flow's resources into st. stats
// may be nil.
func NewReceiver(st store.Store, flow *Flow, stats *Stats, log *slog.Logger) *Receiver {
	return &Receiver{st: st, flow: flow, log: log, stats: stats}
}

// Serve subscribes to every kind of the flow, telling the sender the
// versions this store holds, then applies responses and acknowledges each
// (a NACK carries the error) until the stream or ctx ends. When something
// else deletes a copy the sender believes this store holds (a cleanup job,
// a cascading mesh delete), it subscribes to that kind again so the sender
// resends what is missing.
func (r *Receiver) Serve(ctx context.Context, stream RequestStream) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := r.st.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watching the store: %w", err)
	}
	// applied is what the sender counts as held here, per kind.
	applied := map[string]map[string]string{}
	for _, kind := range r.flow.Kinds {
		if err := r.subscribe(ctx, stream, kind, applied); err != nil {
			return err
		}
	}
	resps := make(chan *discovery.DeltaDiscoveryResponse, 4)
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case resps <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return err
		case resp := <-resps:
			if err := r.answer(ctx, stream, resp, applied); err != nil {
				return err
			}
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("the store watch ended; reconnecting")
			}
			if ev.Op != store.OpDelete {
				continue
			}
			if _, held := applied[ev.Kind][wireName(ev.Mesh, ev.Name)]; held {
				r.log.Info("kds: a synced copy was deleted here; asking for it again", "flow", r.flow.Name, "kind", ev.Kind, "mesh", ev.Mesh, "name", ev.Name)
				if err := r.subscribe(ctx, stream, ev.Kind, applied); err != nil {
					return err
				}
			}
		}
	}
}

// subscribe sends a (re)subscription of kind with what this store holds.
func (r *Receiver) subscribe(ctx context.Context, stream RequestStream, kind string, applied map[string]map[string]string) error {
	have, err := r.holding(ctx, kind)
	if err != nil {
		return err
	}
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: TypeURL(kind), InitialResourceVersions: have}
	if err := stream.Send(req); err != nil {
		return fmt.Errorf("subscribing to %s: %w", kind, err)
	}
	applied[kind] = maps.Clone(have)
	return nil
}

// answer applies one response and ACKs or NACKs it.
func (r *Receiver) answer(ctx context.Context, stream RequestStream, resp *discovery.DeltaDiscoveryResponse, applied map[string]map[string]string) error {
	ack := &discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	if err := r.apply(ctx, resp); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("kds: refusing a response", "flow", r.flow.Name, "type", resp.GetTypeUrl(), "error", err)
		ack.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
		r.stats.rejected(resp.GetTypeUrl(), err.Error())
	} else {
		r.stats.acked(resp.GetTypeUrl())
		if kind, ok := KindOf(resp.GetTypeUrl()); ok && applied[kind] != nil {
			for _, res := range resp.GetResources() {
				applied[kind][res.GetName()] = res.GetVersion()
			}
			for _, n := range resp.GetRemovedResources() {
				delete(applied[kind], n)
			}
		}
	}
	if err := stream.Send(ack); err != nil {
		return fmt.Errorf("acknowledging %s: %w", resp.GetTypeUrl(), err)
	}
	return nil
}

// holding returns the wire names and content versions of the copies of
// kind this store holds.
func (r *Receiver) holding(ctx context.Context, kind string) (map[string]string, error) {
	page, err := r.st.List(ctx, store.Query{Kind: kind})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", kind, err)
	}
	out := map[string]string{}
	for _, rec := range page.Items {
		if !r.flow.Owned(rec) {
			continue
		}
		res, err := fromRecord(rec)
		if err != nil {
			out[wireName(rec.Mesh, rec.Name)] = "unreadable"
			continue
		}
		out[wireName(res.Mesh, res.Name)] = res.Version
	}
	return out, nil
}

// apply writes a response's resources and deletes its removed names. It
// applies what it can and reports every failure.
func (r *Receiver) apply(ctx context.Context, resp *discovery.DeltaDiscoveryResponse) error {
	kind, ok := KindOf(resp.GetTypeUrl())
	if !ok || !r.flow.has(kind) {
		return fmt.Errorf("type %q is not carried by %s", resp.GetTypeUrl(), r.flow.Name)
	}
	var errs []error
	for _, res := range resp.GetResources() {
		w, err := decode(res.GetResource(), kind)
		if err == nil {
			err = r.flow.Check(w)
		}
		if err == nil && wireName(w.Mesh, w.Name) != res.GetName() {
			err = fmt.Errorf("resource %q carries the name %q", res.GetName(), wireName(w.Mesh, w.Name))
		}
		if err == nil {
			err = r.upsert(ctx, w)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, res.GetName(), err))
		}
	}
	removed := slices.Clone(resp.GetRemovedResources())
	slices.Sort(removed)
	for _, n := range removed {
		mesh, name := splitWireName(n)
		if err := r.remove(ctx, store.Key{Kind: kind, Mesh: mesh, Name: name}); err != nil {
			errs = append(errs, fmt.Errorf("removing %s %q: %w", kind, n, err))
		}
	}
	return errors.Join(errs...)
}

// upsert stores w unless the stored copy already has its content.
func (r *Receiver) upsert(ctx context.Context, w *Resource) error {
	want, err := contentVersion(w)
	if err != nil {
		return err
	}
	rec := &store.Record{Kind: w.Kind, Mesh: w.Mesh, Name: w.Name, Labels: w.Labels, Spec: w.Spec}
	for range 5 {
		cur, err := r.st.Get(ctx, w.Key())
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = r.st.Create(ctx, rec)
			if errors.Is(err, store.ErrAlreadyExists) {
				continue
			}
			return err
		case err != nil:
			return err
		}
		if have, err := fromRecord(cur); err == nil && have.Version == want {
			return nil
		}
		rec.Version = cur.Version
		err = r.st.Update(ctx, rec)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		return err
	}
	return fmt.Errorf("gave up after concurrent modifications: %w", store.ErrConflict)
}

// remove deletes a copy this flow owns; a missing one is already gone.
func (r *Receiver) remove(ctx context.Context, k store.Key) error {
	cur, err := r.st.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !r.flow.Owned(cur) {
		return nil // a local resource of the same name: not the peer's to delete
	}
	err = r.st.Delete(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
