package server

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/protobuf/types/known/structpb"

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

// MetaDataplaneStored (node metadata, true) marks a proxy bootstrapped from
// the stored Dataplane: its stream does not write the Dataplane of its
// metadata back to the store, since the store's owner (the Kubernetes Pod
// controller) may have changed it since the bootstrap.
const MetaDataplaneStored = "dataplane.stored"

// storedIdentity reports whether node carries MetaDataplaneStored.
func storedIdentity(node interface {
	GetMetadata() *structpb.Struct
}) bool {
	return node.GetMetadata().GetFields()[MetaDataplaneStored].GetBoolValue()
}
