package xdsclient

import (
	"context"
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// wildcardName subscribes a delta stream to every resource of a type.
const wildcardName = "*"

// deltaSession is one incremental ADS stream.
type deltaSession struct {
	c      *Client
	ctx    context.Context
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	// told holds, per non-wildcard type, the names subscribed on this stream.
	told map[string]set
	// nodeSent is set once the node went out on the first request.
	nodeSent bool
}

// runDelta runs one incremental ADS stream until it fails or ctx ends.
func (c *Client) runDelta(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (healthy bool, err error) {
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("opening the delta ADS stream: %w", err)
	}
	s := &deltaSession{c: c, ctx: ctx, stream: stream, told: map[string]set{}}
	if err := s.subscribeInitial(); err != nil {
		return false, err
	}
	c.setConnected()

	responses := make(chan *discoveryv3.DeltaDiscoveryResponse)
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case responses <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return healthy, ctx.Err()
		case err := <-recvErr:
			return healthy, fmt.Errorf("delta ADS stream: %w", err)
		case resp := <-responses:
			healthy = true
			if err := s.handle(resp); err != nil {
				return healthy, err
			}
		}
	}
}

// subscribeInitial opens the subscriptions of a new stream, telling the
// server which resource versions the client already has.
func (s *deltaSession) subscribeInitial() error {
	for _, t := range resourceTypes {
		have := s.c.resourceVersions(t.url)
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t.url, InitialResourceVersions: have}
		if t.wildcard {
			req.ResourceNamesSubscribe = []string{wildcardName}
		} else {
			want := s.c.subscription(t)
			if len(want) == 0 {
				continue
			}
			for name := range have {
				if !want.has(name) {
					delete(have, name)
				}
			}
			req.ResourceNamesSubscribe = sorted(want)
			s.told[t.url] = want
		}
		if err := s.send(req); err != nil {
			return err
		}
	}
	return nil
}

// handle processes one response: decode, apply, ACK or NACK, then follow
// the subscriptions the accepted config implies.
func (s *deltaSession) handle(resp *discoveryv3.DeltaDiscoveryResponse) error {
	c := s.c
	ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	t, ok := typeByURL(resp.GetTypeUrl())
	if !ok {
		err := fmt.Errorf("unsupported resource type %q", resp.GetTypeUrl())
		c.log.Warn("rejecting a response", "error", err)
		ack.ErrorDetail = nackStatus(err)
		return s.send(ack)
	}
	c.attempt(t)
	u, err := decodeDelta(t, resp, c.AcceptedConfig())
	if err != nil {
		c.rejected(t, err)
	} else {
		err = c.applyUpdate(s.ctx, u)
	}
	if err != nil {
		ack.ErrorDetail = nackStatus(err)
		return s.send(ack)
	}
	if err := s.send(ack); err != nil {
		return err
	}
	return s.syncSubscriptions()
}

// syncSubscriptions subscribes to newly referenced names and unsubscribes
// from names nothing references any more.
func (s *deltaSession) syncSubscriptions() error {
	for _, t := range resourceTypes {
		if t.wildcard {
			continue
		}
		want := s.c.subscription(t)
		told := s.told[t.url]
		add, drop := want.minus(told), told.minus(want)
		if len(add) == 0 && len(drop) == 0 {
			continue
		}
		s.c.log.Debug("subscription changed", "type", t.short, "subscribe", add, "unsubscribe", drop)
		s.told[t.url] = want
		if err := s.send(&discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                  t.url,
			ResourceNamesSubscribe:   sorted(setOf(add)),
			ResourceNamesUnsubscribe: sorted(setOf(drop)),
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *deltaSession) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node = s.c.opts.Node
		s.nodeSent = true
	}
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("delta ADS stream: sending a %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

// decodeDelta decodes an incremental response into an update. A resource
// without a body (a heartbeat) keeps the accepted one.
func decodeDelta(t resourceType, resp *discoveryv3.DeltaDiscoveryResponse, accepted *xdsconfig.Config) (update, error) {
	u := update{typ: t, version: resp.GetSystemVersionInfo(), resources: map[string]received{}, removed: resp.GetRemovedResources()}
	for i, r := range resp.GetResources() {
		if _, dup := u.resources[r.GetName()]; dup {
			return u, decodeError(t, i, r.GetName(), fmt.Errorf("sent twice in one response"))
		}
		if r.GetResource() == nil {
			if msg := getResource(accepted, t.url, r.GetName()); msg != nil {
				u.resources[r.GetName()] = received{msg: msg, version: r.GetVersion()}
			}
			continue
		}
		name, msg, err := decodeResource(t.url, r.GetResource())
		if err != nil {
			return u, decodeError(t, i, r.GetName(), err)
		}
		if msg == nil {
			continue
		}
		if r.GetName() != "" && name != r.GetName() {
			return u, decodeError(t, i, r.GetName(), fmt.Errorf("the resource is named %q", name))
		}
		u.resources[name] = received{msg: msg, version: r.GetVersion()}
	}
	return u, nil
}

func setOf(names []string) set {
	out := set{}
	for _, n := range names {
		out.add(n)
	}
	return out
}
