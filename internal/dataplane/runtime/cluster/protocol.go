package cluster

import (
	"fmt"
	"maps"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
)

// protocolOptions are the common_http_protocol_options of a cluster's
// HttpProtocolOptions, for both of its pools (the HTTP/1.1 fast path's
// and the net/http transport).
type protocolOptions struct {
	// idleTimeout closes an upstream connection that carried no request
	// for this long (0: never). Unset, trellis-dp keeps its pool default
	// of 5 minutes (Envoy's is 1 hour).
	idleTimeout time.Duration
	// maxConnectionDuration closes a connection this long after it was
	// made, once the request on it (if any) is done (0: no limit).
	maxConnectionDuration time.Duration
	// maxStreamDuration caps each request (0: no limit); the HTTP proxy
	// reads it with MaxStreamDuration.
	maxStreamDuration time.Duration
}

// upstreamHTTP reads typed_extension_protocol_options: HTTP/2 for
// explicit_http_config.http2_protocol_options, and the
// common_http_protocol_options.
func upstreamHTTP(def *clusterv3.Cluster) (bool, protocolOptions, error) {
	po := protocolOptions{idleTimeout: idleConnTimeout}
	for _, key := range slices.Sorted(maps.Keys(def.GetTypedExtensionProtocolOptions())) {
		if key != httpProtocolOptionsKey {
			return false, po, fmt.Errorf("typed_extension_protocol_options[%q] is not supported", key)
		}
	}
	a := def.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]
	if a == nil {
		return false, po, nil
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&opts); err != nil {
		return false, po, fmt.Errorf("typed_extension_protocol_options[%q]: %w", httpProtocolOptionsKey, err)
	}
	if common := opts.GetCommonHttpProtocolOptions(); common != nil {
		dur := func(name string, d *durationpb.Duration, def time.Duration) (time.Duration, error) {
			v, err := xdsutil.Duration(d, def)
			if err != nil {
				return 0, fmt.Errorf("typed_extension_protocol_options[%q].common_http_protocol_options.%s: %w", httpProtocolOptionsKey, name, err)
			}
			return v, nil
		}
		var err error
		if po.idleTimeout, err = dur("idle_timeout", common.GetIdleTimeout(), idleConnTimeout); err != nil {
			return false, po, err
		}
		if po.maxConnectionDuration, err = dur("max_connection_duration", common.GetMaxConnectionDuration(), 0); err != nil {
			return false, po, err
		}
		if po.maxStreamDuration, err = dur("max_stream_duration", common.GetMaxStreamDuration(), 0); err != nil {
			return false, po, err
		}
	}
	explicit := opts.GetExplicitHttpConfig()
	switch {
	case explicit == nil:
		return false, po, fmt.Errorf("typed_extension_protocol_options[%q]: explicit_http_config is required", httpProtocolOptionsKey)
	case explicit.GetHttp2ProtocolOptions() != nil:
		return true, po, nil
	case explicit.GetHttpProtocolOptions() != nil:
		return false, po, nil
	default:
		return false, po, fmt.Errorf("typed_extension_protocol_options[%q]: explicit_http_config needs http_protocol_options or http2_protocol_options", httpProtocolOptionsKey)
	}
}
