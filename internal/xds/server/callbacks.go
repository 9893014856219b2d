package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/resource"
)

func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.openStream(id, false, tokenFromContext(ctx))
			return nil
		},
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.openStream(id, true, tokenFromContext(ctx))
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { s.closeStream(id) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.closeStream(id)
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			return s.onRequest(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			version := s.deltaVersion(id, req.GetResponseNonce())
			return s.onRequest(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), version, req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			s.onResponse(id, "", resp.GetVersionInfo(), resp.GetTypeUrl())
		},
		StreamDeltaResponseFunc: func(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			s.onResponse(id, resp.GetNonce(), resp.GetSystemVersionInfo(), resp.GetTypeUrl())
		},
	}
}

func (s *Server) openStream(id int64, delta bool, token string) {
	s.mu.Lock()
	s.streams[id] = &stream{id: id, delta: delta, token: token}
	s.mu.Unlock()
	s.cfg.Metrics.StreamOpened()
}

// deltaNonces remembers, per delta stream, the version sent with each nonce
// so an ACK can be attributed to a version.
type deltaNonce struct {
	nonce, version string
}

func (s *Server) deltaVersion(id int64, nonce string) string {
	if nonce == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dn := range s.deltaSent[id] {
		if dn.nonce == nonce {
			return dn.version
		}
	}
	return ""
}

func (s *Server) onResponse(id int64, nonce, version, typeURL string) {
	s.mu.Lock()
	st := s.streams[id]
	if st != nil && nonce != "" {
		list := append(s.deltaSent[id], deltaNonce{nonce, version})
		if len(list) > 16 {
			list = list[len(list)-16:]
		}
		s.deltaSent[id] = list
	}
	s.mu.Unlock()
	if st == nil || st.proxy == nil {
		s.timer.responseSent(id, "", typeURL, version)
		return
	}
	s.timer.responseSent(id, st.proxy.info().nodeID, typeURL, version)
	key, sub := st.proxy.info().key, st.proxy.subscriptionID
	s.insight.queue(key, func(in *insights.DataplaneInsight) {
		if x := in.Find(sub); x != nil {
			x.Status.Total.ResponsesSent++
			x.Status.LastUpdateTime = time.Now().UTC()
		}
	})
}

// onRequest handles a request on a stream: the first one identifies and
// registers the proxy; later ones ACK or NACK what was sent.
func (s *Server) onRequest(id int64, node *corev3.Node, typeURL, nonce, version, nackMsg string, nack bool) error {
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st == nil {
		return fmt.Errorf("unknown stream %d", id)
	}
	if st.proxy == nil {
		if err := s.attach(st, node); err != nil {
			if status.Code(err) != codes.Unauthenticated { // logged by attach
				s.log.Warn("refusing a proxy", "stream", id, "err", err)
			}
			return err
		}
	}
	if nonce == "" {
		return nil // a subscription, not a reply
	}
	key, sub := st.proxy.info().key, st.proxy.subscriptionID
	s.timer.answered(id, key.Mesh, typeURL, version, nack)
	now := time.Now().UTC()
	if nack {
		s.log.Warn("proxy rejected its config", "proxy", key.String(), "type", typeURL, "error", nackMsg)
		s.insight.queue(key, func(in *insights.DataplaneInsight) {
			if x := in.Find(sub); x != nil {
				x.Status.Total.ResponsesRejected++
				x.Status.LastNACK = &insights.NACK{TypeURL: typeURL, Version: version, Error: nackMsg, Time: now}
			}
		})
		return nil
	}
	s.insight.queue(key, func(in *insights.DataplaneInsight) {
		if x := in.Find(sub); x != nil {
			x.Status.Total.ResponsesAcknowledged++
			if version != "" {
				x.Status.LastACKedVersion = version
			}
		}
	})
	return nil
}

// attach identifies the proxy behind a stream's first request, registers
// its Dataplane, opens its insight subscription and gives it its config.
func (s *Server) attach(st *stream, node *corev3.Node) error {
	info, isZoneProxy, err := s.identifyZoneProxy(node) // zoneproxy.go
	if err != nil {
		return err
	}
	if !isZoneProxy {
		info, err = identify(node, func(mesh, name string, data []byte) (*resource.Resource, error) {
			return decodeDataplane(s.dpDesc(), data, mesh, name)
		})
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.authenticateStream(ctx, st.token, info); err != nil {
		return err
	}
	created := false
	if info.zoneProxy != "" {
		if err := s.registerZoneProxy(ctx, info); err != nil {
			return err
		}
	} else if info.dataplane != nil && !storedIdentity(node) { // bootstrap_stored.go
		if created, err = s.mgr.Apply(ctx, info.dataplane); err != nil {
			return fmt.Errorf("registering Dataplane %s: %w", info.key, err)
		}
	}
	subID := s.cfg.InstanceID + "-" + strconv.FormatInt(st.id, 10)
	if !info.proxyless && info.zoneProxy == "" {
		err = insights.Update(ctx, s.st, info.key.Mesh, info.key.Name, func(in *insights.DataplaneInsight) {
			if created {
				in.RegisteredByProxy = true
			}
			in.Add(insights.Subscription{
				ID: subID, ControlPlaneInstanceID: s.cfg.InstanceID, ConnectTime: time.Now().UTC(),
				Version: map[string]string{"trellisDp": info.version},
			})
		})
		if err != nil {
			return fmt.Errorf("recording the connection of %s: %w", info.key, err)
		}
	}
	s.mu.Lock()
	ps := s.proxies[info.key]
	if ps == nil {
		ps = newProxyState(info)
		ps.mode = xdsMode(st.delta)
		s.proxies[info.key] = ps
		s.byNodeID[info.nodeID] = ps
		s.cfg.Metrics.ProxyConnected(info.key.Mesh, ps.mode)
	}
	ps.node.Store(info)
	ps.streams++
	ps.subscriptionID = subID
	st.proxy = ps
	s.mu.Unlock()
	s.log.Info("proxy connected", "proxy", info.key.String(), "node", info.nodeID, "registered", created, "delta", st.delta)
	// Its config comes with the mesh's next recompute (after the debounce),
	// which the registration above triggers too: proxies connecting
	// together share one load of the mesh.
	s.recon.request(info.key.Mesh)
	return nil
}

func (s *Server) closeStream(id int64) {
	s.mu.Lock()
	st := s.streams[id]
	delete(s.streams, id)
	delete(s.deltaSent, id)
	if st != nil {
		s.cfg.Metrics.StreamClosed()
	}
	s.timer.streamClosed(id)
	if st == nil || st.proxy == nil {
		s.mu.Unlock()
		return
	}
	ps := st.proxy
	ps.streams--
	last := ps.streams == 0
	if last {
		delete(s.proxies, ps.info().key)
		delete(s.byNodeID, ps.info().nodeID)
		s.cache.ClearSnapshot(ps.info().nodeID)
		s.cfg.Metrics.ProxyDisconnected(ps.info().key.Mesh, ps.mode)
		s.timer.proxyGone(ps.info().nodeID)
	}
	s.mu.Unlock()
	if last && ps.info().zoneProxy != "" {
		s.scheduleZoneProxyRemoval(ps.info()) // zoneproxy.go
	}
	if !last || ps.info().proxyless || ps.info().zoneProxy != "" {
		return
	}
	key, sub := ps.info().key, s.cfg.InstanceID+"-"+strconv.FormatInt(id, 10)
	s.log.Info("proxy disconnected", "proxy", key.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.insight.flushKey(ctx, key)
	err := insights.Update(ctx, s.st, key.Mesh, key.Name, func(in *insights.DataplaneInsight) {
		if x := in.Find(sub); x != nil && x.DisconnectTime == nil {
			now := time.Now().UTC()
			x.DisconnectTime = &now
		}
	})
	if err != nil {
		s.log.Warn("recording a disconnection", "proxy", key.String(), "err", err)
	}
	s.scheduleDeregistration(key, s.cfg.DeregistrationDelay)
}
