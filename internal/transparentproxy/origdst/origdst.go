// Package origdst recovers the destination a client originally dialled
// before an iptables nat REDIRECT (or DNAT) rewrote it to a local listener:
// the SO_ORIGINAL_DST socket option of an accepted TCP connection, answered
// by the kernel's connection tracking.
package origdst

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"
)

// Socket option numbers (linux/netfilter_ipv4.h, linux/netfilter_ipv6/ip6_tables.h).
const (
	soOriginalDst     = 80 // SOL_IP, SO_ORIGINAL_DST
	ip6tSoOriginalDst = 80 // SOL_IPV6, IP6T_SO_ORIGINAL_DST
)

// ErrNotRedirected is returned (wrapped) when the kernel has no original
// destination for the connection: it was not redirected by a nat rule
// (the kernel answers ENOENT), or the socket is not a TCP socket.
var ErrNotRedirected = errors.New("connection has no original destination (not redirected by iptables)")

// OriginalDst returns the original destination of an accepted TCP
// connection (a *net.TCPConn, or anything exposing its syscall.RawConn)
// whose packets were redirected to this host by a nat rule. For an IPv4
// client on a dual-stack listener the address is returned as plain IPv4.
func OriginalDst(c syscall.Conn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: raw connection: %w", err)
	}
	var (
		ap   netip.AddrPort
		oerr error
	)
	cerr := raw.Control(func(fd uintptr) {
		ap, oerr = originalDstFD(int(fd))
	})
	if cerr != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: %w", cerr)
	}
	return ap, oerr
}

// originalDstFD asks the kernel for the original destination of the socket
// fd, choosing the IPv4 or IPv6 option from the socket's local address (an
// IPv4-mapped address on an IPv6 socket is tracked as IPv4).
func originalDstFD(fd int) (netip.AddrPort, error) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: getsockname: %w", err)
	}
	v4 := true
	if s6, ok := sa.(*syscall.SockaddrInet6); ok {
		v4 = netip.AddrFrom16(s6.Addr).Is4In6()
	}
	if v4 {
		return getOrigDst(fd, syscall.SOL_IP, soOriginalDst)
	}
	return getOrigDst(fd, syscall.SOL_IPV6, ip6tSoOriginalDst)
}

// getOrigDst calls getsockopt(fd, level, opt) into a sockaddr_in6-sized
// buffer (large enough for sockaddr_in too) and decodes the answer.
func getOrigDst(fd, level, opt int) (netip.AddrPort, error) {
	var buf [syscall.SizeofSockaddrInet6]byte
	size := uint32(len(buf))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		if errno == syscall.ENOENT || errno == syscall.ENOPROTOOPT {
			return netip.AddrPort{}, fmt.Errorf("origdst: getsockopt SO_ORIGINAL_DST: %w: %w", ErrNotRedirected, errno)
		}
		return netip.AddrPort{}, fmt.Errorf("origdst: getsockopt SO_ORIGINAL_DST: %w", errno)
	}
	return decodeSockaddr(buf[:size])
}

// decodeSockaddr decodes a sockaddr_in or sockaddr_in6 as the kernel writes
// it: the family in host byte order, the port in network byte order.
func decodeSockaddr(b []byte) (netip.AddrPort, error) {
	if len(b) < 8 {
		return netip.AddrPort{}, fmt.Errorf("origdst: short sockaddr (%d bytes)", len(b))
	}
	family := *(*uint16)(unsafe.Pointer(&b[0]))
	port := binary.BigEndian.Uint16(b[2:4])
	switch family {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), nil
	case syscall.AF_INET6:
		if len(b) < 24 {
			return netip.AddrPort{}, fmt.Errorf("origdst: short sockaddr_in6 (%d bytes)", len(b))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("origdst: unexpected address family %d", family)
	}
}
