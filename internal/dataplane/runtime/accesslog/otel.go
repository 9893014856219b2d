package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	otelalv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	otlpcommonv1 "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// OTLP export limits.
const (
	otlpBatchMax   = 256
	otlpFlushEvery = 500 * time.Millisecond
	otlpTimeout    = 5 * time.Second
)

// otelRecord renders an OTLP log record (JSON) from a body and
// attributes whose strings are format strings.
type otelRecord struct {
	body  *otelValue
	attrs []otelAttr
}

type otelAttr struct {
	key   string
	value *otelValue
}

// otelValue is a string (a format) or a key-value list.
type otelValue struct {
	text *format.Format
	kvs  []otelAttr
}

func buildOtel(c *otelalv3.OpenTelemetryAccessLogConfig, resolve Resolver, reg stats.Registry) (*log, error) {
	if c.GetCommonConfig() != nil || c.GetGrpcService() != nil {
		return nil, errors.New("common_config and grpc_service are not supported by trellis-dp (http_service: OTLP/HTTP)")
	}
	uri := c.GetHttpService().GetHttpUri()
	if uri == nil {
		return nil, errors.New("http_service.http_uri is required")
	}
	addr, err := resolve(uri.GetCluster())
	if err != nil {
		return nil, fmt.Errorf("http_service.http_uri.cluster: %w", err)
	}
	rest, ok := strings.CutPrefix(uri.GetUri(), "http://")
	if !ok {
		return nil, fmt.Errorf("http_service.http_uri.uri %q: only http:// URIs are supported", uri.GetUri())
	}
	host, path, _ := strings.Cut(rest, "/")
	rec := &otelRecord{}
	if c.GetBody() != nil {
		if rec.body, err = compileOtelValue(c.GetBody()); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	for i, kv := range c.GetAttributes().GetValues() {
		v, err := compileOtelValue(kv.GetValue())
		if err != nil {
			return nil, fmt.Errorf("attributes.values[%d]: %w", i, err)
		}
		rec.attrs = append(rec.attrs, otelAttr{kv.GetKey(), v})
	}
	return &log{otel: rec, sink: otlpSink(addr, host, "/"+path), dropped: reg.Counter("access_log.otel.dropped")}, nil
}

func compileOtelValue(v *otlpcommonv1.AnyValue) (*otelValue, error) {
	switch x := v.GetValue().(type) {
	case *otlpcommonv1.AnyValue_StringValue:
		f, err := format.Parse(x.StringValue)
		if err != nil {
			return nil, err
		}
		return &otelValue{text: f}, nil
	case *otlpcommonv1.AnyValue_KvlistValue:
		out := &otelValue{}
		for _, kv := range x.KvlistValue.GetValues() {
			n, err := compileOtelValue(kv.GetValue())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kv.GetKey(), err)
			}
			out.kvs = append(out.kvs, otelAttr{kv.GetKey(), n})
		}
		return out, nil
	}
	return nil, errors.New("only string and kvlist values are supported")
}

// render renders the record as OTLP JSON.
func (r *otelRecord) render(e *format.Entry) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"timeUnixNano":"`...)
	b = strconv.AppendInt(b, e.Start.UnixNano(), 10)
	b = append(b, `","observedTimeUnixNano":"`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, '"')
	if r.body != nil {
		b = append(b, `,"body":`...)
		b = r.body.append(b, e)
	}
	b = append(b, `,"attributes":`...)
	b = appendKVs(b, r.attrs, e)
	return append(b, '}')
}

func (v *otelValue) append(b []byte, e *format.Entry) []byte {
	if v.text != nil {
		b = append(b, `{"stringValue":`...)
		b = format.AppendJSONString(b, string(v.text.Append(nil, e)))
		return append(b, '}')
	}
	b = append(b, `{"kvlistValue":{"values":`...)
	b = appendKVs(b, v.kvs, e)
	return append(b, "}}"...)
}

func appendKVs(b []byte, kvs []otelAttr, e *format.Entry) []byte {
	b = append(b, '[')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = format.AppendJSONString(b, kv.key)
		b = append(b, `,"value":`...)
		b = kv.value.append(b, e)
		b = append(b, '}')
	}
	return append(b, ']')
}

// otlpQueue batches log records to an OTLP/HTTP collector.
type otlpQueue struct{ queue }

func (q *otlpQueue) lineBased() bool { return false }

func otlpSink(addr, host, path string) sink {
	return sharedSink("otlp:"+addr+"|"+host+"|"+path, func() sink {
		q := &otlpQueue{queue{ch: make(chan []byte, QueueSize)}}
		go otlpLoop(q.ch, "http://"+addr+path, host)
		return q
	})
}

func otlpLoop(ch <-chan []byte, url, host string) {
	client := &http.Client{Timeout: otlpTimeout}
	batch := make([][]byte, 0, otlpBatchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := time.Duration(0)
	for rec := range ch {
		batch = append(batch[:0], rec)
		timer.Reset(otlpFlushEvery)
	fill:
		for len(batch) < otlpBatchMax {
			select {
			case rec := <-ch:
				batch = append(batch, rec)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if err := postLogs(client, url, host, batch); err != nil {
			slog.Debug("access log: OTLP export failed", "url", url, "records", len(batch), "error", err)
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
	}
}

func postLogs(client *http.Client, url, host string, batch [][]byte) error {
	var b bytes.Buffer
	b.WriteString(`{"resourceLogs":[{"resource":{"attributes":[]},"scopeLogs":[{"scope":{"name":"trellis-dp"},"logRecords":[`)
	for i, rec := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(rec)
	}
	b.WriteString("]}]}]}")
	ctx, cancel := context.WithTimeout(context.Background(), otlpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &b)
	if err != nil {
		return err
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("collector answered %d", resp.StatusCode)
	}
	return nil
}
