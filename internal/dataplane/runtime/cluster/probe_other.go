//go:build !unix

package cluster

import "net"

// socketIdle cannot look into the socket here: the connection is assumed
// usable, and a request that fails on it is retried on a new one.
func socketIdle(net.Conn) bool { return true }
