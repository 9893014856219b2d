package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// defaultDNSPort is where the proxy's DNS server listens on 127.0.0.1 (as
// kuma-dp's), when its Dataplane uses transparent proxying.
const defaultDNSPort = 15053

// metaDNSPort is the node metadata key announcing the DNS port (Kuma's).
const metaDNSPort = "dataplane.dns.port"

// announceDNSPort tells the control plane, in the node metadata, that the
// proxy runs a DNS server on 127.0.0.1:port, when its Dataplane (the
// node's dataplane.resource) has networking.transparentProxying and port
// is not 0 (--dns-port 0 turns the DNS server off). The control plane
// then sends the DNS listener there with the mesh's names.
func announceDNSPort(node *corev3.Node, port uint32, log *slog.Logger) error {
	if port > 65535 {
		return fmt.Errorf("--dns-port %d: want a port, 0 to run no DNS server", port)
	}
	fields := node.GetMetadata().GetFields()
	if port == 0 || fields == nil {
		return nil
	}
	var dp struct {
		Networking struct {
			TransparentProxying json.RawMessage `json:"transparentProxying"`
		} `json:"networking"`
	}
	if err := json.Unmarshal([]byte(fields["dataplane.resource"].GetStringValue()), &dp); err != nil {
		return fmt.Errorf("the bootstrap's node metadata dataplane.resource: %w", err)
	}
	if len(dp.Networking.TransparentProxying) == 0 || string(dp.Networking.TransparentProxying) == "null" {
		return nil
	}
	fields[metaDNSPort] = structpb.NewStringValue(strconv.FormatUint(uint64(port), 10))
	log.Info("running the DNS server", "address", "127.0.0.1:"+strconv.FormatUint(uint64(port), 10))
	return nil
}
