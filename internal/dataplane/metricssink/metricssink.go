// Package metricssink is trellis-dp's Envoy metrics_service stats sink: it
// streams the proxy's metrics to the control plane
// (envoy.service.metrics.v3.MetricsService/StreamMetrics) every flush
// interval, the first message of each stream carrying the proxy's node.
//
// The sink runs on its own goroutine and only reads the stats (atomic
// loads): the proxy never waits for it. When the control plane is away or
// slow, flushes are dropped, not queued, and the sink reconnects with
// backoff.
package metricssink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// Reconnect backoff: full jitter between 0 and min(max, base·2ⁿ).
const (
	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
)

// Options configure a Sink.
type Options struct {
	// Address is the control plane's host:port (the ADS address).
	Address string
	// TLS secures the connection; nil means plaintext (tests).
	TLS *tls.Config
	// Token returns the dataplane token sent as "authorization: Bearer";
	// nil or "" sends none.
	Token func() (string, error)
	// Node identifies the proxy on the first message of each stream.
	Node *corev3.Node
	// Interval is the flush interval (required, positive).
	Interval time.Duration
	// Families reads the proxy's metrics; it must not block.
	Families func() []*dto.MetricFamily
	Logger   *slog.Logger
}

// Sink streams metrics to the control plane.
type Sink struct {
	o   Options
	log *slog.Logger
}

// New checks the options and returns a sink; Run starts it.
func New(o Options) (*Sink, error) {
	switch {
	case o.Address == "":
		return nil, errors.New("metrics sink: no control-plane address")
	case o.Interval <= 0:
		return nil, fmt.Errorf("metrics sink: stats_flush_interval %v must be positive", o.Interval)
	case o.Families == nil:
		return nil, errors.New("metrics sink: no metrics source")
	case o.Node == nil:
		return nil, errors.New("metrics sink: no node")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Sink{o: o, log: log.With("component", "metrics-sink")}, nil
}

// Run streams until ctx ends.
func (s *Sink) Run(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		sent, err := s.runStream(ctx)
		if ctx.Err() != nil {
			return
		}
		if sent {
			attempt = 0
		}
		delay := jitter(attempt)
		attempt++
		s.log.Debug("metrics stream ended, reconnecting", "err", err, "after", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func jitter(attempt int) time.Duration {
	ceiling := backoffMax
	if attempt < 30 {
		if d := backoffBase << attempt; d < backoffMax {
			ceiling = d
		}
	}
	return rand.N(ceiling)
}

// runStream opens one connection and stream and flushes on it until it
// fails or ctx ends. sent reports whether a message went out.
func (s *Sink) runStream(ctx context.Context) (sent bool, err error) {
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if s.o.TLS != nil {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(s.o.TLS))
	}
	conn, err := grpc.NewClient(s.o.Address, creds,
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		grpc.WithUserAgent("trellis-dp"))
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", s.o.Address, err)
	}
	defer conn.Close()
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.o.Token != nil {
		tok, err := s.o.Token()
		if err != nil {
			return false, err
		}
		if tok != "" {
			streamCtx = metadata.AppendToOutgoingContext(streamCtx, "authorization", "Bearer "+tok)
		}
	}
	stream, err := metricsv3.NewMetricsServiceClient(conn).StreamMetrics(streamCtx)
	if err != nil {
		return false, err
	}
	tick := time.NewTicker(s.o.Interval)
	defer tick.Stop()
	first := true
	for {
		msg := &metricsv3.StreamMetricsMessage{EnvoyMetrics: s.o.Families()}
		if first {
			msg.Identifier = &metricsv3.StreamMetricsMessage_Identifier{Node: s.o.Node}
		}
		if err := s.send(stream, cancel, msg); err != nil {
			return sent, s.streamError(stream, err)
		}
		if first {
			s.log.Info("streaming metrics to the control plane", "address", s.o.Address, "interval", s.o.Interval)
		}
		first, sent = false, true
		select {
		case <-ctx.Done():
			closeCtx, done := context.WithTimeout(context.Background(), time.Second)
			defer done()
			go func() { <-closeCtx.Done(); cancel() }()
			_, _ = stream.CloseAndRecv()
			return sent, ctx.Err()
		case <-tick.C:
		}
	}
}

// send sends one message; a send that does not complete within a flush
// interval (the control plane stopped reading) cancels the stream.
func (s *Sink) send(stream metricsv3.MetricsService_StreamMetricsClient, cancel func(), msg *metricsv3.StreamMetricsMessage) error {
	t := time.AfterFunc(max(s.o.Interval, time.Second), cancel)
	defer t.Stop()
	return stream.Send(msg)
}

// streamError returns why a stream ended: a failed Send returns io.EOF
// when the server ended the stream, whose status CloseAndRecv reports.
func (s *Sink) streamError(stream metricsv3.MetricsService_StreamMetricsClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			err = rerr
		}
	}
	s.log.Warn("metrics stream to the control plane failed", "address", s.o.Address, "err", err)
	return err
}
