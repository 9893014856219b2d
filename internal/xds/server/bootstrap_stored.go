package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// storedDataplane answers a bootstrap request that carries no
// dataplaneResource, as kuma-dp sends on Kubernetes: the proxy is the
// Dataplane req.Name of mesh req.Mesh already in the store (written by the
// Pod controller). When it does not exist (yet) the answer is 404 naming
// it, which trellis-dp retries; a store failure is 500. It returns nil
// after answering.
func (s *Server) storedDataplane(w http.ResponseWriter, r *http.Request, req *BootstrapRequest) *resource.Resource {
	res, err := s.mgr.Get(r.Context(), s.dpDesc(), req.Mesh, req.Name)
	switch {
	case err == nil:
		return res
	case errors.Is(err, store.ErrNotFound):
		writeStdError(w, http.StatusNotFound, fmt.Sprintf(
			"Dataplane %q does not exist in mesh %q: the request carries no dataplaneResource, so the Dataplane must already be stored (on Kubernetes the control plane writes it once the Pod has an IP and a Service selects it)",
			req.Name, req.Mesh))
	default:
		s.log.Error("bootstrap: reading the stored Dataplane", "mesh", req.Mesh, "name", req.Name, "err", err)
		writeStdError(w, http.StatusInternalServerError, "reading the Dataplane failed; see the control plane's log")
	}
	return nil
}
