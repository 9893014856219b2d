package transparentproxy

import (
	"context"
	"strings"
)

// The sidecar's inbound passthrough connects to the original destination
// from InboundPassthroughSource so the rules do not redirect it back.
// 127.0.0.6 is on lo already (all of 127.0.0.0/8 is); ::6 is not, and
// without it the answers to ::6 would leave through the default route, so
// an IPv6 install adds it to lo (as Kuma does) and uninstall removes it.

// addPassthroughSource puts f's passthrough source on lo (IPv6 only).
func (in Installer) addPassthroughSource(ctx context.Context, f Family) error {
	if !f.is6() {
		return nil
	}
	_, err := run(ctx, "", "ip", "-6", "addr", "replace", f.InboundPassthroughSource.String(), "dev", "lo", "nodad")
	return err
}

// removePassthroughSource takes it off lo again; best effort.
func (in Installer) removePassthroughSource(ctx context.Context, f Family) {
	if !f.is6() {
		return
	}
	out, err := run(ctx, "", "ip", "-6", "addr", "show", "dev", "lo")
	if err != nil || !strings.Contains(out, " "+f.InboundPassthroughSource.String()+" ") {
		return
	}
	if _, err := run(ctx, "", "ip", "-6", "addr", "del", f.InboundPassthroughSource.String(), "dev", "lo"); err != nil {
		in.log().Warn("transparent proxy: removing the passthrough source address", "address", f.InboundPassthroughSource.String(), "error", err)
	}
}
