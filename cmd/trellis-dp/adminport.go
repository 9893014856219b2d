package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// announceAdminPort returns the Dataplane (JSON) with networking.admin.port
// set to the port of adminAddr when the Dataplane sets none, as kuma-dp
// does: the control plane routes the MeshMetric listener to the admin
// server at 127.0.0.1:<networking.admin.port>. A Dataplane that sets
// another port is left alone, with a warning.
func announceAdminPort(js []byte, adminAddr string, log *slog.Logger) ([]byte, error) {
	_, portStr, err := net.SplitHostPort(adminAddr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr %q: %w", adminAddr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return js, nil // a port picked at random cannot be announced
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		return nil, fmt.Errorf("the Dataplane: %w", err)
	}
	networking, _ := obj["networking"].(map[string]any)
	if networking == nil {
		return js, nil
	}
	admin, _ := networking["admin"].(map[string]any)
	if p, ok := admin["port"].(float64); ok && p != 0 {
		if uint64(p) != port {
			log.Warn("networking.admin.port differs from the port of --admin-addr; the MeshMetric endpoint routes to networking.admin.port",
				"networking.admin.port", uint64(p), "admin_addr", adminAddr)
		}
		return js, nil
	}
	if admin == nil {
		admin = map[string]any{}
		networking["admin"] = admin
	}
	admin["port"] = port
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the Dataplane: %w", err)
	}
	return out, nil
}
