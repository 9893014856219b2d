package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// An ORIGINAL_DST cluster (lb_policy CLUSTER_PROVIDED) has no members: it
// connects each downstream connection to the destination the connection
// was originally addressed to, which the listener's original_dst filter
// recovered (a transparent proxy's passthrough). Only tcp_proxy uses it;
// an HTTP route to it finds no healthy upstream.

// OriginalDstConn is a downstream connection whose original destination
// the listener recovered (envoy.filters.listener.original_dst).
type OriginalDstConn interface {
	net.Conn
	// OriginalDst is where the client addressed the connection before the
	// host redirected it to the proxy.
	OriginalDst() netip.AddrPort
}

// ErrNoOriginalDst is returned (wrapped) for a connection to an
// ORIGINAL_DST cluster that has no original destination (it was not
// redirected), or whose original destination is the proxy's own socket
// (connecting there would loop).
var ErrNoOriginalDst = errors.New("no original destination")

// OriginalDst reports whether the cluster is of type ORIGINAL_DST.
func (c *Cluster) OriginalDst() bool { return c.originalDst }

// OriginalDestination returns the address an ORIGINAL_DST cluster
// connects the downstream connection down to.
func OriginalDestination(down net.Conn) (string, error) {
	oc, ok := down.(OriginalDstConn)
	if !ok {
		return "", fmt.Errorf("%w: the connection was not redirected", ErrNoOriginalDst)
	}
	dst := oc.OriginalDst()
	if !dst.IsValid() {
		return "", fmt.Errorf("%w: the connection was not redirected", ErrNoOriginalDst)
	}
	if local, ok := down.LocalAddr().(*net.TCPAddr); ok && local.AddrPort() == dst {
		return "", fmt.Errorf("%w: %s is the proxy's own address", ErrNoOriginalDst, dst)
	}
	return dst.String(), nil
}

// checkOriginalDst checks what an ORIGINAL_DST cluster may not have.
func checkOriginalDst(def *clusterv3.Cluster) error {
	switch {
	case def.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED:
		return fmt.Errorf("type ORIGINAL_DST needs lb_policy CLUSTER_PROVIDED, not %s", def.GetLbPolicy())
	case def.GetEdsClusterConfig() != nil:
		return errors.New("eds_cluster_config is only for type EDS")
	case def.GetLoadAssignment() != nil:
		return errors.New("load_assignment is only for type STATIC (an ORIGINAL_DST cluster has no members)")
	case len(def.GetHealthChecks()) > 0:
		return errors.New("health_checks: an ORIGINAL_DST cluster has no members to check")
	case def.GetOutlierDetection() != nil:
		return errors.New("outlier_detection: an ORIGINAL_DST cluster has no members to eject")
	}
	return nil
}
