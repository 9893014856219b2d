package server

import (
	"context"
	"net/http"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Test hooks let end-to-end tests push a config a proxy must refuse, to
// check NACK handling end to end. They are mounted only when the control
// plane runs with dpServer.testHooks (TRELLIS_DP_SERVER_TEST_HOOKS=true).

// SetCorrupt makes the proxy's config carry a field no proxy of ours
// implements (Listener.per_connection_buffer_limit_bytes) until cleared,
// and pushes it now.
func (s *Server) SetCorrupt(ctx context.Context, mesh, name string, on bool) error {
	key := proxyKey{Mesh: mesh, Name: name}
	s.mu.Lock()
	if on {
		s.corrupt[key] = true
	} else {
		delete(s.corrupt, key)
	}
	ps := s.proxies[key]
	s.mu.Unlock()
	if ps == nil {
		return nil
	}
	return s.recon.refreshProxy(ctx, ps)
}

func (s *Server) isCorrupt(key proxyKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt[key]
}

// corruptResources returns a copy of r whose listeners carry an
// unsupported field.
func corruptResources(r *build.Resources) *build.Resources {
	out := *r
	out.Listeners = nil
	for _, l := range r.Listeners {
		cl := proto.Clone(l).(*listenerv3.Listener)
		cl.PerConnectionBufferLimitBytes = wrapperspb.UInt32(1)
		out.Listeners = append(out.Listeners, cl)
	}
	return &out
}

// TestHookHandler serves PUT and DELETE
// /_testhooks/meshes/{mesh}/dataplanes/{name}/corrupt.
func (s *Server) TestHookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		on := r.Method == http.MethodPut
		if err := s.SetCorrupt(r.Context(), r.PathValue("mesh"), r.PathValue("name"), on); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
