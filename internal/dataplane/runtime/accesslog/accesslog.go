// Package accesslog implements the access logs of trellis-dp's HTTP
// connection managers and tcp_proxy filters (their access_log lists):
// envoy.access_loggers.file (a file, or the Tcp backend of MeshAccessLog:
// the file path TCPPath with a JSON {address, message} format, whose
// messages go to address over TCP) and envoy.access_loggers.open_telemetry
// (OTLP/HTTP JSON log records to a collector cluster).
//
// A line is rendered on the request's goroutine and handed to its sink's
// bounded queue; a full queue drops the line and counts it
// (access_log.<file|tcp|otel>.dropped), so a slow or dead sink never
// stalls traffic. Sinks write from a goroutine of their own and reopen
// or reconnect with back-off.
package accesslog

import (
	"errors"
	"fmt"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filealv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otelalv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// TCPPath is the file path that makes a file access log the Tcp backend
// of MeshAccessLog (the control plane's build.TCPAccessLogPath).
const TCPPath = "/tmp/trellis-al-tcp.sock"

// Resolver returns the address (host:port) of a collector cluster.
type Resolver func(cluster string) (string, error)

// Logger is a built access_log list, immutable once built. A nil Logger
// logs nothing.
type Logger struct {
	logs []*log
}

// log is one access log: a rendering and its sink.
type log struct {
	text    *format.Format
	json    *format.JSON
	otel    *otelRecord
	sink    sink
	dropped *stats.Counter
}

// Build builds the access logs of a list; it returns nil for an empty
// list.
func Build(list []*accesslogv3.AccessLog, resolve Resolver, reg stats.Registry) (*Logger, error) {
	if len(list) == 0 {
		return nil, nil
	}
	l := &Logger{}
	for i, al := range list {
		lg, err := buildLog(al, resolve, reg)
		if err != nil {
			return nil, fmt.Errorf("access_log[%d] (%q): %w", i, al.GetName(), err)
		}
		l.logs = append(l.logs, lg)
	}
	return l, nil
}

func buildLog(al *accesslogv3.AccessLog, resolve Resolver, reg stats.Registry) (*log, error) {
	if al.GetFilter() != nil {
		return nil, errors.New("filter is not supported by trellis-dp")
	}
	tc := al.GetTypedConfig()
	if tc == nil {
		return nil, errors.New("typed_config is required")
	}
	msg, err := tc.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	switch c := msg.(type) {
	case *filealv3.FileAccessLog:
		return buildFile(c, reg)
	case *otelalv3.OpenTelemetryAccessLogConfig:
		return buildOtel(c, resolve, reg)
	}
	return nil, fmt.Errorf("typed_config %s is not a supported access logger", tc.GetTypeUrl())
}

func buildFile(c *filealv3.FileAccessLog, reg stats.Registry) (*log, error) {
	if c.GetPath() == "" {
		return nil, errors.New("path is required")
	}
	lf := c.GetLogFormat()
	if lf == nil {
		return nil, errors.New("log_format is required")
	}
	lg := &log{}
	if c.GetPath() == TCPPath {
		return buildTCP(lf, reg)
	}
	if err := lg.compile(lf); err != nil {
		return nil, err
	}
	lg.sink = fileSink(c.GetPath())
	lg.dropped = reg.Counter("access_log.file.dropped")
	return lg, nil
}

// compile compiles a SubstitutionFormatString.
func (lg *log) compile(lf *corev3.SubstitutionFormatString) error {
	var err error
	switch {
	case lf.GetTextFormatSource() != nil:
		ds := lf.GetTextFormatSource()
		if _, ok := ds.GetSpecifier().(*corev3.DataSource_InlineString); !ok {
			return errors.New("log_format.text_format_source: only inline_string is supported")
		}
		if lg.text, err = format.Parse(ds.GetInlineString()); err != nil {
			return fmt.Errorf("log_format.text_format_source.inline_string: %w", err)
		}
	case lf.GetJsonFormat() != nil:
		if lg.json, err = format.ParseJSON(lf.GetJsonFormat().AsMap()); err != nil {
			return fmt.Errorf("log_format.json_format: %w", err)
		}
		lg.json.OmitEmpty = lf.GetOmitEmptyValues()
	default:
		return errors.New("log_format: text_format_source or json_format is required")
	}
	return nil
}

// buildTCP builds a Tcp backend: json_format {address, message}.
func buildTCP(lf *corev3.SubstitutionFormatString, reg stats.Registry) (*log, error) {
	js := lf.GetJsonFormat()
	addr := js.GetFields()["address"].GetStringValue()
	msg := js.GetFields()["message"]
	if js == nil || addr == "" || msg == nil || len(js.GetFields()) != 2 {
		return nil, fmt.Errorf("log_format of a %s log must be json_format {address, message}", TCPPath)
	}
	lg := &log{sink: tcpSink(addr), dropped: reg.Counter("access_log.tcp.dropped")}
	var err error
	switch v := msg.GetKind().(type) {
	case *structpb.Value_StringValue:
		lg.text, err = format.Parse(v.StringValue)
	case *structpb.Value_StructValue:
		lg.json, err = format.ParseJSON(v.StructValue.AsMap())
		if lg.json != nil {
			lg.json.OmitEmpty = lf.GetOmitEmptyValues()
		}
	default:
		err = errors.New("must be a string or an object")
	}
	if err != nil {
		return nil, fmt.Errorf("log_format.json_format.message: %w", err)
	}
	return lg, nil
}

// Log renders e with every access log and queues the lines.
func (l *Logger) Log(e *format.Entry) {
	if l == nil {
		return
	}
	for _, lg := range l.logs {
		var line []byte
		switch {
		case lg.otel != nil:
			line = lg.otel.render(e)
		case lg.json != nil:
			line = append(lg.json.Append(make([]byte, 0, 256), e), '\n')
		default:
			line = lg.text.Append(make([]byte, 0, 256), e)
			if !strings.HasSuffix(string(line), "\n") && lg.sink.lineBased() {
				line = append(line, '\n')
			}
		}
		if !lg.sink.offer(line) {
			lg.dropped.Inc()
		}
	}
}
