package xdsclient

import "google.golang.org/grpc/credentials/insecure"

// Stats returns the client's counters and gauges, named after Envoy's
// where one exists:
//
//	control_plane.connected_state          1 while a stream is open
//	control_plane.connects                 streams opened
//	control_plane.reconnects               attempts after a failure
//	xds.<t>.update_attempt|update_success|update_rejected   per type (cds, eds, lds, rds, sds)
//	xds.ready                              1 once the first config is in
func (c *Client) Stats() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{
		"control_plane.connected_state": b2u(c.connected),
		"control_plane.connects":        c.connects,
		"control_plane.reconnects":      c.reconnects,
		"xds.ready":                     b2u(c.ready),
	}
	for _, t := range resourceTypes {
		s := c.types[t.url]
		out["xds."+t.short+".update_attempt"] = s.attempts
		out["xds."+t.short+".update_success"] = s.accepted
		out["xds."+t.short+".update_rejected"] = s.rejected
	}
	return out
}

// TextReadouts returns the client's string-valued state: the last stream
// error, and per type the accepted version and the last rejection.
func (c *Client) TextReadouts() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{
		"control_plane.last_error": c.lastError,
		"control_plane.mode":       c.opts.Mode.String(),
	}
	for _, t := range resourceTypes {
		out["xds."+t.short+".version_text"] = c.accepted.Versions[t.url]
		out["xds."+t.short+".last_rejection"] = c.types[t.url].lastRejection
	}
	return out
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// insecureCredentials is used only when Options.TLS is nil (tests).
var insecureCredentials = insecure.NewCredentials
