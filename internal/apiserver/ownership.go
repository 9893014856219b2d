package apiserver

import (
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// Control-plane modes, as in internal/config (repeated to keep the API
// server free of the configuration package).
const (
	modeGlobal = "global"
	modeZone   = "zone"
)

// zoneOwnedKinds are the kinds a zone owns and syncs to the global: the
// global refuses writes to them. Every other kind is the global's, and a
// zone refuses writes to it.
var zoneOwnedKinds = map[string]bool{
	"Dataplane": true, "ZoneIngress": true, "ZoneEgress": true,
	"DataplaneInsight": true, "ZoneIngressInsight": true, "ZoneEgressInsight": true,
}

// UseMode tells the API server the control plane's mode (standalone,
// global or zone): in the multi-zone modes, writes to kinds the other side
// owns are refused with 405, and policies created here get the matching
// kuma.io/origin label.
func (s *Server) UseMode(mode string) { s.mode = mode }

// refuseForeignWrite answers 405 and returns true when this control plane
// does not own kind d (Kuma's rule and message).
func (s *Server) refuseForeignWrite(w http.ResponseWriter, d *resource.Descriptor) bool {
	var here, there string
	switch {
	case s.mode == modeZone && !zoneOwnedKinds[d.Kind]:
		here, there = "Zone", "Global"
	case s.mode == modeGlobal && zoneOwnedKinds[d.Kind]:
		here, there = "Global", "Zone"
	default:
		return false
	}
	writeError(w, http.StatusMethodNotAllowed, "Method not allowed",
		fmt.Sprintf("You are trying to apply a %s on %s CP. In multizone setup, it should be only applied on %s CP and synced to %s CP.", d.Kind, here, there, here))
	return true
}

// origin is the kuma.io/origin label of a policy created through this API.
func (s *Server) origin() string {
	if s.mode == modeGlobal {
		return "global"
	}
	return OriginZone
}
