//go:build unix

package cluster

import (
	"errors"
	"net"
	"syscall"
)

// socketIdle reports whether a connection's socket has nothing to read
// and is not at EOF, with one non-blocking recv(MSG_PEEK) that leaves the
// socket as it is.
func socketIdle(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		idle = errors.Is(e, syscall.EAGAIN) || errors.Is(e, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && idle
}
