package server

import (
	"context"
	"errors"
	"time"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/store"
)

// scheduleDeregistration removes a proxy-registered Dataplane after delay
// unless its proxy is back (on this or any instance sharing the store).
func (s *Server) scheduleDeregistration(key proxyKey, delay time.Duration) {
	time.AfterFunc(delay, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.maybeDeregister(ctx, key)
	})
}

func (s *Server) maybeDeregister(ctx context.Context, key proxyKey) {
	s.mu.Lock()
	_, connectedHere := s.proxies[key]
	s.mu.Unlock()
	if connectedHere {
		return
	}
	in, err := insights.Get(ctx, s.st, key.Mesh, key.Name)
	if err != nil {
		s.log.Warn("reading an insight before deregistration", "proxy", key.String(), "err", err)
		return
	}
	if in.Online() || !in.RegisteredByProxy {
		return
	}
	last := in.Last()
	if last != nil && last.DisconnectTime != nil && time.Since(*last.DisconnectTime) < s.cfg.DeregistrationDelay-time.Second {
		return // it came and went again; a newer timer will decide
	}
	err = s.mgr.Delete(ctx, s.dpDesc(), key.Mesh, key.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("deregistering a Dataplane", "proxy", key.String(), "err", err)
		return
	}
	if err := insights.Delete(ctx, s.st, key.Mesh, key.Name); err != nil {
		s.log.Warn("deleting an insight", "proxy", key.String(), "err", err)
	}
	s.log.Info("deregistered the Dataplane of a proxy that left", "proxy", key.String())
}

// scheduleDeregistrations, at start, schedules the removal of
// proxy-registered Dataplanes whose proxy is offline.
func (s *Server) scheduleDeregistrations(ctx context.Context) {
	all, err := insights.List(ctx, s.st, "")
	if err != nil {
		s.log.Warn("listing insights at start", "err", err)
		return
	}
	for k, in := range all {
		if in.Online() || !in.RegisteredByProxy {
			continue
		}
		delay := s.cfg.DeregistrationDelay
		if last := in.Last(); last != nil && last.DisconnectTime != nil {
			delay -= time.Since(*last.DisconnectTime)
		}
		s.scheduleDeregistration(proxyKey{Mesh: k.Mesh, Name: k.Name}, max(delay, 0)+time.Second)
	}
}

// staleGrace is how long, after a start, proxies that were connected to a
// previous run get to reconnect (their backoff is capped at 30 s) before
// their old subscriptions are closed and their endpoints leave the mesh.
const staleGrace = 45 * time.Second

// closeStaleInsights handles subscriptions left open by a previous run:
// with a single control plane per store no proxy is connected before it
// starts, but proxies keep serving and come back, so they are given
// staleGrace to reconnect before their old subscriptions are closed.
func (s *Server) closeStaleInsights(ctx context.Context) {
	all, err := insights.List(ctx, s.st, "")
	if err != nil {
		s.log.Warn("listing insights at start", "err", err)
		return
	}
	stale := map[proxyKey][]string{}
	for k, in := range all {
		for _, sub := range in.Subscriptions {
			if sub.DisconnectTime == nil {
				key := proxyKey{Mesh: k.Mesh, Name: k.Name}
				stale[key] = append(stale[key], sub.ID)
			}
		}
	}
	if len(stale) == 0 {
		return
	}
	time.AfterFunc(staleGrace, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		now := time.Now().UTC()
		for key, ids := range stale {
			err := insights.Update(ctx, s.st, key.Mesh, key.Name, func(in *insights.DataplaneInsight) {
				for _, id := range ids {
					if sub := in.Find(id); sub != nil && sub.DisconnectTime == nil {
						sub.DisconnectTime = &now
					}
				}
			})
			if err != nil {
				s.log.Warn("closing a stale insight", "proxy", key.String(), "err", err)
				continue
			}
			s.scheduleDeregistration(key, s.cfg.DeregistrationDelay)
		}
	})
}
