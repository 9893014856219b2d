package cluster

import (
	"context"
	"net"
)

// DialTCPAddr is DialTCP to the given endpoint address (from Pick or
// PickHash) instead of one it picks: the TCP proxy needs the address to
// report the attempt's outcome (Request.Done) and to try another endpoint
// after a failed connect.
func (c *Cluster) DialTCPAddr(ctx context.Context, addr string) (net.Conn, error) {
	if err := c.beginPending(); err != nil {
		return nil, err
	}
	defer c.endPending()
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil || c.tls == nil {
		return conn, err
	}
	tc, err := c.handshake(ctx, c.tls, conn, addr)
	if err != nil {
		_ = conn.Close()
		c.stats.CxActive.Dec()
		return nil, err
	}
	return tc, nil
}
