package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// maxBatch caps the resources of one response; the rest follow once the
// receiver ACKs it.
const maxBatch = 500

// nackRetry is how long a sender waits before resending what a receiver
// refused (the refusal may be transient: a mesh not yet there).
const nackRetry = 2 * time.Second

// ResponseStream is the sender's end of a stream: it receives requests and
// sends responses.
type ResponseStream interface {
	Send(*discovery.DeltaDiscoveryResponse) error
	Recv() (*discovery.DeltaDiscoveryRequest, error)
}

// Sender serves one flow's resources from a store over a stream.
type Sender struct {
	st    store.Store
	flow  *Flow
	log   *slog.Logger
	stats *Stats
}

// NewSender returns a sender of flow's resources from st. stats may be nil.
func NewSender(st store.Store, flow *Flow, stats *Stats, log *slog.Logger) *Sender {
	return &Sender{st: st, flow: flow, log: log, stats: stats}
}

// typeState is what a sender knows of one type on one stream.
type typeState struct {
	subscribed bool
	// acked maps wire names to the versions the receiver holds.
	acked map[string]string
	// inflight is the response awaiting an ACK, nil when none.
	inflight *pending
	dirty    bool
	retryAt  time.Time
}

type pending struct {
	nonce   string
	changed map[string]string
	removed []string
}

// Serve runs until the stream or ctx ends: it answers subscriptions with
// the difference between what the receiver holds and the store, then sends
// every change, one unacknowledged response per type at a time.
func (s *Sender) Serve(ctx context.Context, stream ResponseStream) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reqs := make(chan *discovery.DeltaDiscoveryRequest, 16)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	events, err := s.st.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watching the store: %w", err)
	}
	states := map[string]*typeState{}
	for _, k := range s.flow.Kinds {
		states[k] = &typeState{acked: map[string]string{}}
	}
	nonce := 0
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return err
		case req := <-reqs:
			if err := s.handleRequest(states, req); err != nil {
				return err
			}
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if events, err = s.st.Watch(ctx); err != nil {
					return fmt.Errorf("watching the store again: %w", err)
				}
				markAll(states)
				break
			}
			s.markEvent(states, ev)
		case <-retry.C:
			now := time.Now()
			for _, st := range states {
				if !st.retryAt.IsZero() && !now.Before(st.retryAt) {
					st.dirty, st.retryAt = true, time.Time{}
				}
			}
		}
		// Coalesce bursts: take whatever else is already queued.
	drain:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					break drain
				}
				s.markEvent(states, ev)
			case req := <-reqs:
				if err := s.handleRequest(states, req); err != nil {
					return err
				}
			default:
				break drain
			}
		}
		if err := s.flush(ctx, stream, states, &nonce); err != nil {
			return err
		}
		resetRetry(retry, states)
	}
}

func markAll(states map[string]*typeState) {
	for _, st := range states {
		st.dirty = true
	}
}

func (s *Sender) markEvent(states map[string]*typeState, ev store.Event) {
	if ev.Kind == kinds.Mesh && ev.Op == store.OpDelete {
		markAll(states) // the mesh's records went with it
		return
	}
	if st, ok := states[ev.Kind]; ok {
		st.dirty = true
	}
}

func resetRetry(t *time.Timer, states map[string]*typeState) {
	var next time.Time
	for _, st := range states {
		if !st.retryAt.IsZero() && (next.IsZero() || st.retryAt.Before(next)) {
			next = st.retryAt
		}
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	if next.IsZero() {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(time.Until(next), time.Millisecond))
}

// handleRequest takes a subscription, an ACK or a NACK.
func (s *Sender) handleRequest(states map[string]*typeState, req *discovery.DeltaDiscoveryRequest) error {
	kind, ok := KindOf(req.GetTypeUrl())
	st := states[kind]
	if !ok || st == nil {
		return fmt.Errorf("%s: the receiver asked for type %q, which this flow does not carry", s.flow.Name, req.GetTypeUrl())
	}
	if req.GetResponseNonce() == "" {
		// A (re)subscription: it says what the receiver holds.
		st.subscribed, st.dirty = true, true
		st.acked = map[string]string{}
		for n, v := range req.GetInitialResourceVersions() {
			st.acked[n] = v
		}
		st.inflight, st.retryAt = nil, time.Time{}
		return nil
	}
	if st.inflight == nil || st.inflight.nonce != req.GetResponseNonce() {
		return nil // a stale answer
	}
	p := st.inflight
	st.inflight = nil
	if d := req.GetErrorDetail(); d != nil {
		s.log.Warn("kds: the receiver refused a response", "flow", s.flow.Name, "type", kind, "error", d.GetMessage())
		s.stats.rejected(kind, d.GetMessage())
		st.retryAt = time.Now().Add(nackRetry)
		return nil
	}
	for n, v := range p.changed {
		st.acked[n] = v
	}
	for _, n := range p.removed {
		delete(st.acked, n)
	}
	s.stats.acked(kind)
	return nil
}

// flush sends, in flow order, the difference of every dirty type that has
// no response in flight.
func (s *Sender) flush(ctx context.Context, stream ResponseStream, states map[string]*typeState, nonce *int) error {
	for _, kind := range s.flow.Kinds {
		st := states[kind]
		if !st.subscribed || !st.dirty || st.inflight != nil || !st.retryAt.IsZero() {
			continue
		}
		desired, err := s.snapshot(ctx, kind)
		if err != nil {
			return err
		}
		st.dirty = false
		resp, p, more, err := diff(kind, desired, st.acked)
		if err != nil {
			return err
		}
		if resp == nil {
			continue
		}
		*nonce++
		p.nonce = strconv.Itoa(*nonce)
		resp.Nonce = p.nonce
		resp.SystemVersionInfo = p.nonce
		if err := stream.Send(resp); err != nil {
			return fmt.Errorf("sending %s: %w", kind, err)
		}
		st.inflight = p
		st.dirty = more
		s.stats.sent(kind)
	}
	return nil
}

// snapshot lists kind's records and maps them to the receiver's copies.
func (s *Sender) snapshot(ctx context.Context, kind string) (map[string]*Resource, error) {
	page, err := s.st.List(ctx, store.Query{Kind: kind})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", kind, err)
	}
	out := make(map[string]*Resource, len(page.Items))
	for _, rec := range page.Items {
		r, ok := s.flow.Map(rec)
		if !ok {
			continue
		}
		v, err := contentVersion(r)
		if err != nil {
			s.log.Warn("kds: skipping a resource that does not encode", "kind", kind, "mesh", rec.Mesh, "name", rec.Name, "error", err)
			continue
		}
		r.Version = v
		out[wireName(r.Mesh, r.Name)] = r
	}
	return out, nil
}

// diff builds the response taking acked to desired (at most maxBatch
// resources, names sorted), or nil when they agree. more tells that
// resources were left for the next response.
func diff(kind string, desired map[string]*Resource, acked map[string]string) (*discovery.DeltaDiscoveryResponse, *pending, bool, error) {
	var changed, removed []string
	for n, r := range desired {
		if acked[n] != r.Version {
			changed = append(changed, n)
		}
	}
	for n := range acked {
		if _, ok := desired[n]; !ok {
			removed = append(removed, n)
		}
	}
	if len(changed) == 0 && len(removed) == 0 {
		return nil, nil, false, nil
	}
	slices.Sort(changed)
	slices.Sort(removed)
	more := len(changed) > maxBatch
	if more {
		changed = changed[:maxBatch]
	}
	resp := &discovery.DeltaDiscoveryResponse{TypeUrl: TypeURL(kind), RemovedResources: removed}
	p := &pending{changed: make(map[string]string, len(changed)), removed: removed}
	resp.Resources = make([]*discovery.Resource, 0, len(changed))
	for _, n := range changed {
		r := desired[n]
		a, err := encode(r)
		if err != nil {
			return nil, nil, false, errors.Join(fmt.Errorf("encoding %s %q", kind, n), err)
		}
		resp.Resources = append(resp.Resources, &discovery.Resource{Name: n, Version: r.Version, Resource: a})
		p.changed[n] = r.Version
	}
	return resp, p, more, nil
}
