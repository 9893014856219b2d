package xdsclient

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// Repeated NACKs of an identical response are delayed, starting at
// nackDelayBase and doubling to nackDelayMax: a state-of-the-world server
// answers a NACK (which carries the previous version) by sending the
// rejected version again, and without a delay the two sides would loop as
// fast as the network allows.
const (
	nackDelayBase = time.Second
	nackDelayMax  = 10 * time.Second
)

// sotwSession is one state-of-the-world ADS stream.
type sotwSession struct {
	c      *Client
	ctx    context.Context
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	// nonces holds the last response nonce per type; a request with an
	// older nonce is ignored by the server.
	nonces map[string]string
	// told holds, per non-wildcard type, the names last requested on this
	// stream; a type is absent until its first request.
	told map[string]set
	// rejected remembers the last rejected response per type.
	rejected map[string]*rejection
	// delayed carries NACKs whose sending was put off.
	delayed chan *discoveryv3.DiscoveryRequest
}

// rejection is a rejected response, identified by a hash of its content.
type rejection struct {
	hash    [sha256.Size]byte
	err     error
	repeats int
}

// runSotW runs one state-of-the-world ADS stream until it fails or ctx
// ends.
func (c *Client) runSotW(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (healthy bool, err error) {
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("opening the ADS stream: %w", err)
	}
	s := &sotwSession{
		c: c, ctx: ctx, stream: stream,
		nonces:   map[string]string{},
		told:     map[string]set{},
		rejected: map[string]*rejection{},
		delayed:  make(chan *discoveryv3.DiscoveryRequest),
	}
	for _, t := range resourceTypes {
		if !t.wildcard && len(c.subscription(t)) == 0 {
			continue
		}
		if err := s.send(s.request(t, "", nil)); err != nil {
			return false, err
		}
	}
	c.setConnected()

	responses := make(chan *discoveryv3.DiscoveryResponse)
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
			return healthy, fmt.Errorf("ADS stream: %w", err)
		case resp := <-responses:
			healthy = true
			if err := s.handle(resp); err != nil {
				return healthy, err
			}
		case req := <-s.delayed:
			if err := s.send(req); err != nil {
				return healthy, err
			}
		}
	}
}

// handle processes one response: decode, apply, ACK or NACK, then follow
// the subscriptions the accepted config implies.
func (s *sotwSession) handle(resp *discoveryv3.DiscoveryResponse) error {
	c := s.c
	t, ok := typeByURL(resp.GetTypeUrl())
	if !ok {
		err := fmt.Errorf("unsupported resource type %q", resp.GetTypeUrl())
		c.log.Warn("rejecting a response", "error", err)
		return s.send(&discoveryv3.DiscoveryRequest{
			TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(), ErrorDetail: nackStatus(err),
		})
	}
	s.nonces[t.url] = resp.GetNonce()
	c.attempt(t)
	hash := hashResponse(resp)
	if r := s.rejected[t.url]; r != nil && r.hash == hash {
		// The same content again: same verdict, without bothering the
		// Applier, after a growing pause.
		r.repeats++
		c.rejected(t, r.err)
		s.nackLater(s.request(t, resp.GetNonce(), r.err), r.repeats)
		return nil
	}
	u, err := decodeSotW(t, resp, c.AcceptedConfig())
	if err != nil {
		c.rejected(t, err)
	} else {
		err = c.applyUpdate(s.ctx, u)
	}
	if err != nil {
		s.rejected[t.url] = &rejection{hash: hash, err: err}
		return s.send(s.request(t, resp.GetNonce(), err))
	}
	delete(s.rejected, t.url)
	if err := s.send(s.request(t, resp.GetNonce(), nil)); err != nil {
		return err
	}
	return s.syncSubscriptions()
}

// syncSubscriptions sends a request for every non-wildcard type whose
// referenced names differ from what the server was last told.
func (s *sotwSession) syncSubscriptions() error {
	for _, t := range resourceTypes {
		if t.wildcard {
			continue
		}
		want := s.c.subscription(t)
		told, sent := s.told[t.url]
		if (!sent && len(want) == 0) || (sent && told.equal(want)) {
			continue
		}
		s.c.log.Debug("subscription changed", "type", t.short, "names", sorted(want))
		if err := s.send(s.request(t, s.nonces[t.url], nil)); err != nil {
			return err
		}
	}
	return nil
}

// request builds a request for a type: its current subscription, the last
// accepted version, the nonce it answers and, for a NACK, the error.
func (s *sotwSession) request(t resourceType, nonce string, nack error) *discoveryv3.DiscoveryRequest {
	req := &discoveryv3.DiscoveryRequest{
		VersionInfo:   s.c.acceptedVersion(t.url),
		Node:          s.c.opts.Node,
		TypeUrl:       t.url,
		ResponseNonce: nonce,
	}
	if !t.wildcard {
		want := s.c.subscription(t)
		req.ResourceNames = sorted(want)
		s.told[t.url] = want
	}
	if nack != nil {
		req.ErrorDetail = nackStatus(nack)
	}
	return req
}

// nackLater sends req after a delay that grows with repeats.
func (s *sotwSession) nackLater(req *discoveryv3.DiscoveryRequest, repeats int) {
	delay := nackDelayMax
	if repeats <= 5 {
		delay = min(nackDelayBase<<(repeats-1), nackDelayMax)
	}
	time.AfterFunc(delay, func() {
		select {
		case s.delayed <- req:
		case <-s.ctx.Done():
		}
	})
}

func (s *sotwSession) send(req *discoveryv3.DiscoveryRequest) error {
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("ADS stream: sending a %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

// decodeSotW decodes a state-of-the-world response into an update. A
// heartbeat (a wrapper without a resource) keeps the accepted resource.
func decodeSotW(t resourceType, resp *discoveryv3.DiscoveryResponse, accepted *xdsconfig.Config) (update, error) {
	u := update{typ: t, version: resp.GetVersionInfo(), resources: map[string]received{}, replaceAll: t.fullState}
	for i, a := range resp.GetResources() {
		name, msg, err := decodeResource(t.url, a)
		if err != nil {
			return u, decodeError(t, i, name, err)
		}
		if _, dup := u.resources[name]; dup {
			return u, decodeError(t, i, name, fmt.Errorf("sent twice in one response"))
		}
		if msg == nil {
			if msg = getResource(accepted, t.url, name); msg == nil {
				continue
			}
		}
		u.resources[name] = received{msg: msg, version: resp.GetVersionInfo()}
	}
	return u, nil
}

// nackStatus is the error_detail of a NACK.
func nackStatus(err error) *statuspb.Status {
	return &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// hashResponse identifies a response's content (not its nonce).
func hashResponse(resp *discoveryv3.DiscoveryResponse) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\n", len(resp.GetVersionInfo()), resp.GetVersionInfo())
	for _, a := range resp.GetResources() {
		fmt.Fprintf(h, "%d:%s%d:", len(a.GetTypeUrl()), a.GetTypeUrl(), len(a.GetValue()))
		h.Write(a.GetValue())
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
