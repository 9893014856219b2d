package xdsclient

import (
	"google.golang.org/grpc/credentials/insecure"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

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

// envoyNames are Envoy's names for the update counters of the types
// Envoy counts in one place (CDS under cluster_manager, LDS under
// listener_manager).
var envoyNames = map[string]string{"cds": "cluster_manager.cds.", "lds": "listener_manager.lds."}

var _ stats.Collector = (*Client)(nil)

// Samples implements stats.Collector: the stats of Stats, typed (the
// connection state and readiness are gauges, the rest counters), plus
// Envoy's cluster_manager.cds.* and listener_manager.lds.* update
// counters.
func (c *Client) Samples() []stats.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []stats.Sample{
		{Name: "control_plane.connected_state", Kind: stats.KindGauge, Value: b2u(c.connected)},
		{Name: "control_plane.connects", Kind: stats.KindCounter, Value: c.connects},
		{Name: "control_plane.reconnects", Kind: stats.KindCounter, Value: c.reconnects},
		{Name: "xds.ready", Kind: stats.KindGauge, Value: b2u(c.ready)},
	}
	for _, t := range resourceTypes {
		s := c.types[t.url]
		prefixes := []string{"xds." + t.short + "."}
		if p, ok := envoyNames[t.short]; ok {
			prefixes = append(prefixes, p)
		}
		for _, p := range prefixes {
			out = append(out,
				stats.Sample{Name: p + "update_attempt", Kind: stats.KindCounter, Value: s.attempts},
				stats.Sample{Name: p + "update_success", Kind: stats.KindCounter, Value: s.accepted},
				stats.Sample{Name: p + "update_rejected", Kind: stats.KindCounter, Value: s.rejected})
		}
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
