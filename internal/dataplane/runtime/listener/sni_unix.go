//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package listener

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// peekRecord returns the first TLS record of raw, read with MSG_PEEK so it
// stays in the socket.
func peekRecord(raw *net.TCPConn, _ net.Conn) ([]byte, error) {
	rc, err := raw.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, maxClientHello)
	var out []byte
	var opErr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, e := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK)
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
			if n < 5 {
				return false
			}
			need := 5 + (int(buf[3])<<8 | int(buf[4]))
			if n < need {
				return false
			}
			out = buf[:need]
			return true
		}
	})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errDeadline
		}
		return nil, err
	}
	return out, opErr
}
