package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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

// bindConfig is upstream_bind_config: the source address of upstream
// connections (a transparent proxy's inbound passthrough binds 127.0.0.6,
// which the host's redirect rules leave alone, so the connection to the
// original destination is not redirected back to the proxy).
type bindConfig struct {
	source   netip.Addr
	freebind bool
}

// parseBindConfig reads upstream_bind_config (nil when unset). Errors
// start with the field name.
func parseBindConfig(bc *corev3.BindConfig) (*bindConfig, error) {
	if bc == nil {
		return nil, nil
	}
	sa := bc.GetSourceAddress()
	if sa == nil {
		return nil, errors.New("source_address is required")
	}
	a, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("source_address.address: %w", err)
	}
	if sa.GetPortValue() != 0 {
		return nil, errors.New("source_address.port_value must be 0 (any port)")
	}
	return &bindConfig{source: a.Unmap(), freebind: bc.GetFreebind().GetValue()}, nil
}

// dialer returns the dialer of upstream connections: bound to the source
// address (IP_FREEBIND when asked: the address need not exist yet).
func (b *bindConfig) dialer() net.Dialer {
	if b == nil {
		return net.Dialer{}
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(b.source, 0))}
	if b.freebind {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if b.source.Is6() {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Freebind, 1)
				} else {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// ipv6Freebind is IPV6_FREEBIND (linux/in6.h; Linux 4.15 and later).
const ipv6Freebind = 78
