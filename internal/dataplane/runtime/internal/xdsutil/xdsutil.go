// Package xdsutil holds the small conversions from Envoy protos that more
// than one part of the runtime needs: socket addresses, durations and
// config sources.
package xdsutil

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SocketAddress returns the ip:port of an Address that must be a
// socket_address with a literal IP and a port in 1..65535.
func SocketAddress(a *corev3.Address) (netip.AddrPort, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return netip.AddrPort{}, errors.New("socket_address is required")
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("socket_address.address %q is not an IP address", sa.GetAddress())
	}
	if ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("socket_address.address %q: zoned IPv6 addresses are not supported", sa.GetAddress())
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return netip.AddrPort{}, errors.New("socket_address.protocol must be TCP")
	}
	port := sa.GetPortValue()
	if port == 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("socket_address.port_value %d is out of range 1-65535", port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// Duration converts d, returning def when d is unset. It rejects negative
// and out-of-range values.
func Duration(d *durationpb.Duration, def time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, err
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, fmt.Errorf("duration %s is negative", v)
	}
	return v, nil
}

// CheckADS accepts a config source that points at the ADS stream with the
// v3 resource API, the only kind trellis-dp subscribes through.
func CheckADS(cs *corev3.ConfigSource) error {
	if cs == nil {
		return errors.New("config_source is required")
	}
	if cs.GetAds() == nil {
		return errors.New("config_source must be ads")
	}
	if v := cs.GetResourceApiVersion(); v != corev3.ApiVersion_V3 {
		return fmt.Errorf("config_source.resource_api_version %s is not supported (V3 only)", v)
	}
	return nil
}
