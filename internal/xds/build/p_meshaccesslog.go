package build

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filealv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otelalv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	otlpcommonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/api/policy/meshaccesslog"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshAccessLog (docs/xds-contract.md, "MeshAccessLog"): every backend of
// the merged conf becomes one access log of the listener's HCM or
// tcp_proxy: to[] rules on outbounds, from[]/rules[] on inbounds. Kuma's
// placeholders are substituted here; the formats are checked with the
// operators trellis-dp implements, so an unknown one is an error naming
// the policy field.

const meshAccessLogKind = "MeshAccessLog"

// Names of the access loggers.
const (
	fileAccessLogName = "envoy.access_loggers.file"
	otelAccessLogName = "envoy.access_loggers.open_telemetry"
	// TCPAccessLogPath is the path of a Tcp backend's file access log:
	// as in Kuma, a Unix socket a log forwarder listens on, which reads
	// JSON lines {"address": ..., "message": ...} and sends each message
	// to address. trellis-dp recognises the path and forwards the
	// messages itself.
	TCPAccessLogPath = "/tmp/trellis-al-tcp.sock"
	// accessLogOtelClusterPrefix names the cluster of an OpenTelemetry
	// backend: the prefix, then the endpoint.
	accessLogOtelClusterPrefix = "meshaccesslog:opentelemetry:"
)

// Kuma's default formats.
const (
	defaultTCPAccessLogFormat  = `[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes`
	defaultHTTPAccessLogFormat = `[%START_TIME%] %KUMA_MESH% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%KUMA_SOURCE_SERVICE%" "%KUMA_DESTINATION_SERVICE%" "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "%UPSTREAM_HOST%"`
)

func init() {
	register(Plugin{
		Name:  meshAccessLogKind,
		Order: 300,
		OutboundHCM: func(p *proxymodel.Proxy, out *proxymodel.Outbound, m *hcmv3.HttpConnectionManager) error {
			logs, err := outboundAccessLogs(p, out, true)
			m.AccessLog = append(m.AccessLog, logs...)
			return err
		},
		OutboundTCPProxy: func(p *proxymodel.Proxy, out *proxymodel.Outbound, tp *tcpv3.TcpProxy) error {
			logs, err := outboundAccessLogs(p, out, false)
			tp.AccessLog = append(tp.AccessLog, logs...)
			return err
		},
		InboundHCM: func(p *proxymodel.Proxy, in *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error {
			logs, err := inboundAccessLogs(p, in, true)
			m.AccessLog = append(m.AccessLog, logs...)
			return err
		},
		InboundTCPProxy: func(p *proxymodel.Proxy, in *proxymodel.Inbound, tp *tcpv3.TcpProxy) error {
			logs, err := inboundAccessLogs(p, in, false)
			tp.AccessLog = append(tp.AccessLog, logs...)
			return err
		},
		ProxyOutbound: func(p *proxymodel.Proxy, r *Resources) error {
			for i := range p.Outbounds {
				conf, ok, err := outboundConf[meshaccesslog.Conf](p, meshAccessLogKind, &p.Outbounds[i])
				if err != nil || !ok {
					if err != nil {
						return err
					}
					continue
				}
				if err := addAccessLogClusters(r, conf); err != nil {
					return err
				}
			}
			return nil
		},
		ProxyInbound: func(p *proxymodel.Proxy, r *Resources) error {
			for i := range p.Inbounds {
				conf, ok, err := inboundConf[meshaccesslog.Conf](p, meshAccessLogKind, &p.Inbounds[i])
				if err != nil {
					return err
				}
				if ok {
					if err := addAccessLogClusters(r, conf); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
}

func outboundAccessLogs(p *proxymodel.Proxy, out *proxymodel.Outbound, http bool) ([]*accesslogv3.AccessLog, error) {
	conf, ok, err := outboundConf[meshaccesslog.Conf](p, meshAccessLogKind, out)
	if err != nil || !ok {
		return nil, err
	}
	src := "unknown"
	if len(p.Services) > 0 {
		src = p.Services[0]
	}
	vars := format.KumaVars{Mesh: p.Mesh, SourceService: src, DestinationService: out.Service, TrafficDirection: "OUTBOUND", Zone: p.Zone}
	logs, err := accessLogs(conf, vars, http)
	if err != nil {
		return nil, fmt.Errorf("to %s: spec.to[].default.%w", out.Service, err)
	}
	return logs, nil
}

func inboundAccessLogs(p *proxymodel.Proxy, in *proxymodel.Inbound, http bool) ([]*accesslogv3.AccessLog, error) {
	conf, ok, err := inboundConf[meshaccesslog.Conf](p, meshAccessLogKind, in)
	if err != nil || !ok {
		return nil, err
	}
	vars := format.KumaVars{Mesh: p.Mesh, SourceService: "unknown", DestinationService: in.Service, TrafficDirection: "INBOUND", Zone: p.Zone}
	logs, err := accessLogs(conf, vars, http)
	if err != nil {
		return nil, fmt.Errorf("inbound %s:%d: spec.from[].default.%w", in.Address, in.Port, err)
	}
	return logs, nil
}

// accessLogs translates the backends of conf; errors start with the
// field path below "default".
func accessLogs(conf meshaccesslog.Conf, vars format.KumaVars, http bool) ([]*accesslogv3.AccessLog, error) {
	if conf.Backends == nil {
		return nil, nil
	}
	def := defaultTCPAccessLogFormat
	if http {
		def = defaultHTTPAccessLogFormat
	}
	var out []*accesslogv3.AccessLog
	for i, b := range *conf.Backends {
		path := fmt.Sprintf("backends[%d]", i)
		var al *accesslogv3.AccessLog
		var err error
		switch {
		case b.File != nil:
			al, err = fileAccessLog(b.File.Path, b.File.Format, def, vars, nil)
			path += ".file.format."
		case b.Tcp != nil:
			al, err = fileAccessLog(TCPAccessLogPath, b.Tcp.Format, def, vars, &b.Tcp.Address)
			path += ".tcp.format."
		case b.OpenTelemetry != nil:
			al, err = otelAccessLog(b.OpenTelemetry, def, vars)
			path += ".openTelemetry."
		default:
			err = fmt.Errorf(": backend type %q is not supported", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s%w", path, err)
		}
		out = append(out, al)
	}
	return out, nil
}

// fileAccessLog is a file access log; tcpAddress, when not nil, makes it
// a Tcp backend's (a JSON line {address, message} to TCPAccessLogPath).
func fileAccessLog(path string, f *meshaccesslog.Format, def string, vars format.KumaVars, tcpAddress *string) (*accesslogv3.AccessLog, error) {
	sfs := &corev3.SubstitutionFormatString{}
	if f != nil && f.Json != nil {
		fields := map[string]any{}
		for _, kv := range *f.Json {
			fields[kv.Key] = vars.Interpolate(kv.Value)
		}
		if _, err := format.ParseJSON(fields); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		if tcpAddress != nil {
			fields = map[string]any{"address": *tcpAddress, "message": fields}
		}
		st, err := structpb.NewStruct(fields)
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		sfs.Format = &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st}
		sfs.OmitEmptyValues = f.OmitEmptyValues != nil && *f.OmitEmptyValues
	} else {
		text := def
		if f != nil && f.Plain != nil {
			text = *f.Plain
		}
		text = vars.Interpolate(text) + "\n"
		if _, err := format.Parse(text); err != nil {
			return nil, fmt.Errorf("plain: %w", err)
		}
		if tcpAddress != nil {
			st, err := structpb.NewStruct(map[string]any{"address": *tcpAddress, "message": text})
			if err != nil {
				return nil, err
			}
			sfs.Format = &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st}
		} else {
			sfs.Format = &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: text},
			}}
		}
	}
	cfg, err := anyOf(&filealv3.FileAccessLog{Path: path, AccessLogFormat: &filealv3.FileAccessLog_LogFormat{LogFormat: sfs}})
	if err != nil {
		return nil, err
	}
	return &accesslogv3.AccessLog{Name: fileAccessLogName, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg}}, nil
}

// otelAccessLog sends log records over OTLP/HTTP to the endpoint's
// cluster.
func otelAccessLog(o *meshaccesslog.OtelBackend, def string, vars format.KumaVars) (*accesslogv3.AccessLog, error) {
	if o.BackendRef != nil {
		return nil, fmt.Errorf("backendRef: MeshOpenTelemetryBackend is not supported yet (use endpoint)")
	}
	host, port, err := collectorHostPort(o.Endpoint, 4318)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	body, err := otelBody(o.Body, def, vars)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	cfg := &otelalv3.OpenTelemetryAccessLogConfig{
		HttpService: otlpHTTPService(accessLogOtelCluster(host, port), host, port, "/v1/logs"),
		LogName:     meshAccessLogKind,
		StatPrefix:  "meshaccesslog",
		Body:        body,
	}
	for i, kv := range o.Attributes {
		v := vars.Interpolate(kv.Value)
		if _, err := format.Parse(v); err != nil {
			return nil, fmt.Errorf("attributes[%d].value: %w", i, err)
		}
		if cfg.Attributes == nil {
			cfg.Attributes = &otlpcommonv1.KeyValueList{}
		}
		cfg.Attributes.Values = append(cfg.Attributes.Values, &otlpcommonv1.KeyValue{
			Key: kv.Key, Value: &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_StringValue{StringValue: v}},
		})
	}
	a, err := anyOf(cfg)
	if err != nil {
		return nil, err
	}
	return &accesslogv3.AccessLog{Name: otelAccessLogName, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, nil
}

// otelBody is the log record body: the default format, a format string,
// or an object of format strings (a key-value list).
func otelBody(raw json.RawMessage, def string, vars format.KumaVars) (*otlpcommonv1.AnyValue, error) {
	if len(raw) == 0 {
		raw, _ = json.Marshal(def)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return otelValue(v, vars)
}

func otelValue(v any, vars format.KumaVars) (*otlpcommonv1.AnyValue, error) {
	switch x := v.(type) {
	case string:
		s := vars.Interpolate(x)
		if _, err := format.Parse(s); err != nil {
			return nil, err
		}
		return &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_StringValue{StringValue: s}}, nil
	case map[string]any:
		kvl := &otlpcommonv1.KeyValueList{}
		for _, k := range sortedKeys(x) {
			val, err := otelValue(x[k], vars)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			kvl.Values = append(kvl.Values, &otlpcommonv1.KeyValue{Key: k, Value: val})
		}
		return &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_KvlistValue{KvlistValue: kvl}}, nil
	default:
		return nil, fmt.Errorf("values must be strings or objects, not %T", v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func accessLogOtelCluster(host string, port uint32) string {
	return accessLogOtelClusterPrefix + net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// addAccessLogClusters adds the clusters of conf's OpenTelemetry
// backends that r does not have yet.
func addAccessLogClusters(r *Resources, conf meshaccesslog.Conf) error {
	if conf.Backends == nil {
		return nil
	}
	for _, b := range *conf.Backends {
		if b.OpenTelemetry == nil || b.OpenTelemetry.BackendRef != nil {
			continue
		}
		host, port, err := collectorHostPort(b.OpenTelemetry.Endpoint, 4318)
		if err != nil {
			return err
		}
		addCollectorCluster(r, accessLogOtelCluster(host, port), host, port)
	}
	return nil
}
