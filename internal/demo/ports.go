package demo

import (
	"fmt"
	"net"
	"strconv"
)

// loopback is the only address the demo listens on.
const loopback = "127.0.0.1"

// freePorts returns n distinct loopback ports that were free a moment ago.
// The listeners are all open at once, so the ports differ; another process
// could take one before the demo does, which start-up then reports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", loopback+":0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portFree reports whether the loopback port can be listened on now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// hostPort is "127.0.0.1:port".
func hostPort(port int) string {
	return net.JoinHostPort(loopback, strconv.Itoa(port))
}
