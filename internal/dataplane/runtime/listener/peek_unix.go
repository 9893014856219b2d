//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package listener

import (
	"errors"
	"net"
	"os"
	"syscall"
)

var errDeadline = os.ErrDeadlineExceeded

// peek classifies the first bytes of conn with recv(MSG_PEEK): the bytes
// stay in the socket for whoever reads next, and conn stays a
// *net.TCPConn (so a plaintext tcp_proxy session can still splice). When
// fewer bytes than needed are there, it waits for more through the
// runtime poller, bounded by conn's read deadline.
func peek(conn *net.TCPConn) (verdict, net.Conn, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return needMore, nil, err
	}
	var buf [clientHelloPrefixLen]byte
	v := needMore
	var opErr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, e := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != nil:
				opErr = e
				return true
			case n == 0:
				opErr = errClosedEarly
				return true
			}
			v = classify(buf[:n])
			// Not decided yet: wait until more bytes arrive.
			return v != needMore
		}
	})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return v, conn, errDeadline
		}
		return v, nil, err
	}
	return v, conn, opErr
}
