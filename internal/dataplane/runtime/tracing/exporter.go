package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Exporter limits: a span waits in a bounded queue (a full queue drops
// it), and goes out in a batch of at most batchMax spans at most
// flushEvery after it was queued.
const (
	queueSize   = 4096
	batchMax    = 256
	flushEvery  = 500 * time.Millisecond
	postTimeout = 5 * time.Second
	maxBackoff  = 5 * time.Second
)

// finished is a span waiting for export.
type finished struct {
	ctx      SpanContext
	parent   SpanID
	name     string
	kind     Kind
	start    time.Time
	duration time.Duration
	service  string
	tags     []Tag
}

type wireFormat uint8

const (
	formatZipkin wireFormat = iota
	formatOTLP
)

// exporter sends the spans of every tracer with the same collector.
type exporter struct {
	format      wireFormat
	url         string
	host        string
	traceID128  bool
	kind        string // zipkin | opentelemetry (stat names)
	serviceName string
	queue       chan *finished
	client      *http.Client
}

var (
	exportersMu sync.Mutex
	exporters   = map[string]*exporter{}
)

// sharedExporter returns the exporter of a collector, started on first
// use; exporters live as long as the process (a few per proxy at most).
func sharedExporter(f wireFormat, addr, host, path string, id128 bool, kind, service string, _ stats.Registry) *exporter {
	key := strconv.Itoa(int(f)) + "|" + addr + "|" + host + "|" + path + "|" + strconv.FormatBool(id128) + "|" + service
	exportersMu.Lock()
	defer exportersMu.Unlock()
	if e, ok := exporters[key]; ok {
		return e
	}
	e := &exporter{
		format: f, url: "http://" + addr + path, host: host, traceID128: id128, kind: kind, serviceName: service,
		queue:  make(chan *finished, queueSize),
		client: &http.Client{Timeout: postTimeout},
	}
	exporters[key] = e
	go e.run()
	return e
}

// offer queues a span; false when the queue is full (the span is
// dropped).
func (e *exporter) offer(f *finished) bool {
	select {
	case e.queue <- f:
		return true
	default:
		return false
	}
}

func (e *exporter) run() {
	batch := make([]*finished, 0, batchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := time.Duration(0)
	for {
		f := <-e.queue
		batch = append(batch[:0], f)
		timer.Reset(flushEvery)
	fill:
		for len(batch) < batchMax {
			select {
			case f := <-e.queue:
				batch = append(batch, f)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if err := e.post(batch); err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), maxBackoff)
			slog.Debug("tracing: export failed", "url", e.url, "spans", len(batch), "error", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
	}
}

func (e *exporter) post(batch []*finished) error {
	var body []byte
	ctype := "application/json"
	switch e.format {
	case formatZipkin:
		body = e.zipkinJSON(batch)
	default:
		body = otlpJSON(batch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = e.host
	req.Header.Set("Content-Type", ctype)
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "collector answered " + strconv.Itoa(e.code) }

var jsonStr = format.AppendJSONString

// zipkinJSON encodes spans as Zipkin v2 JSON.
func (e *exporter) zipkinJSON(batch []*finished) []byte {
	b := make([]byte, 0, 512*len(batch))
	b = append(b, '[')
	for i, f := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		tid := f.ctx.TraceID.String()
		if !e.traceID128 && f.ctx.TraceID.Short() {
			tid = tid[16:]
		}
		b = append(b, `{"traceId":`...)
		b = jsonStr(b, tid)
		b = append(b, `,"id":`...)
		b = jsonStr(b, f.ctx.SpanID.String())
		if !f.parent.IsZero() {
			b = append(b, `,"parentId":`...)
			b = jsonStr(b, f.parent.String())
		}
		kind := "SERVER"
		if f.kind == KindClient {
			kind = "CLIENT"
		}
		b = append(b, `,"kind":"`+kind+`","name":`...)
		b = jsonStr(b, f.name)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, f.start.UnixMicro(), 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, max(f.duration.Microseconds(), 1), 10)
		b = append(b, `,"localEndpoint":{"serviceName":`...)
		b = jsonStr(b, f.service)
		b = append(b, `},"tags":{`...)
		for j, t := range f.tags {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsonStr(b, t.Key)
			b = append(b, ':')
			b = jsonStr(b, t.Value)
		}
		b = append(b, "}}"...)
	}
	return append(b, ']')
}

// otlpJSON encodes spans as an OTLP/HTTP JSON ExportTraceServiceRequest,
// one resource per service.
func otlpJSON(batch []*finished) []byte {
	var services []string
	by := map[string][]*finished{}
	for _, f := range batch {
		if _, ok := by[f.service]; !ok {
			services = append(services, f.service)
		}
		by[f.service] = append(by[f.service], f)
	}
	b := make([]byte, 0, 512*len(batch))
	b = append(b, `{"resourceSpans":[`...)
	for i, svc := range services {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":`...)
		b = jsonStr(b, svc)
		b = append(b, `}}]},"scopeSpans":[{"scope":{"name":"trellis-dp"},"spans":[`...)
		for j, f := range by[svc] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendOTLPSpan(b, f)
		}
		b = append(b, "]}]}"...)
	}
	return append(b, "]}"...)
}

func appendOTLPSpan(b []byte, f *finished) []byte {
	b = append(b, `{"traceId":`...)
	b = jsonStr(b, f.ctx.TraceID.String())
	b = append(b, `,"spanId":`...)
	b = jsonStr(b, f.ctx.SpanID.String())
	if !f.parent.IsZero() {
		b = append(b, `,"parentSpanId":`...)
		b = jsonStr(b, f.parent.String())
	}
	kind := "2" // SPAN_KIND_SERVER
	if f.kind == KindClient {
		kind = "3"
	}
	b = append(b, `,"kind":`+kind+`,"name":`...)
	b = jsonStr(b, f.name)
	b = append(b, `,"startTimeUnixNano":"`...)
	b = strconv.AppendInt(b, f.start.UnixNano(), 10)
	b = append(b, `","endTimeUnixNano":"`...)
	b = strconv.AppendInt(b, f.start.Add(f.duration).UnixNano(), 10)
	b = append(b, `","attributes":[`...)
	isErr := false
	for j, t := range f.tags {
		if j > 0 {
			b = append(b, ',')
		}
		isErr = isErr || t.Key == "error"
		b = append(b, `{"key":`...)
		b = jsonStr(b, t.Key)
		b = append(b, `,"value":{"stringValue":`...)
		b = jsonStr(b, t.Value)
		b = append(b, "}}"...)
	}
	b = append(b, ']')
	if isErr {
		b = append(b, `,"status":{"code":2}`...)
	}
	return append(b, '}')
}
