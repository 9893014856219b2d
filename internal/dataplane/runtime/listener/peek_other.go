//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package listener

import (
	"errors"
	"io"
	"net"
	"os"
)

var errDeadline = os.ErrDeadlineExceeded

// peek classifies the first bytes of conn by reading them; the returned
// connection replays them before reading on.
func peek(conn *net.TCPConn) (verdict, net.Conn, error) {
	var buf [clientHelloPrefixLen]byte
	n := 0
	v := needMore
	for v == needMore {
		m, err := conn.Read(buf[n:])
		n += m
		if m > 0 {
			v = classify(buf[:n])
		}
		if err != nil && v == needMore {
			pc := &prefixConn{Conn: conn, prefix: append([]byte(nil), buf[:n]...)}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return v, pc, errDeadline
			}
			if errors.Is(err, io.EOF) {
				return v, nil, errClosedEarly
			}
			return v, nil, err
		}
	}
	return v, &prefixConn{Conn: conn, prefix: append([]byte(nil), buf[:n]...)}, nil
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }
