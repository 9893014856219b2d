package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// defaultNoTrafficInterval is Envoy's no_traffic_interval default.
const defaultNoTrafficInterval = 60 * time.Second

// checkKind is the health checker of a HealthCheck.
type checkKind int

const (
	checkHTTP checkKind = iota + 1
	checkTCP
	checkGRPC
)

// hcConfig is a validated health_checks[0].
type hcConfig struct {
	kind                          checkKind
	timeout, interval             time.Duration
	intervalJitter, initialJitter time.Duration
	jitterPercent                 uint32
	noTrafficInterval             time.Duration
	healthyThreshold              uint32
	unhealthyThreshold            uint32
	reuse                         bool

	// HTTP.
	path     string
	expected [][2]int64 // [start, end)
	headers  []*corev3.HeaderValueOption
	// TCP.
	send    []byte
	receive [][]byte
	// gRPC.
	service   string
	authority string
}

func parseHealthCheck(hc *corev3.HealthCheck) (*hcConfig, error) {
	cfg := &hcConfig{reuse: true}
	var err error
	durations := []struct {
		name     string
		d        *durationpb.Duration
		def      time.Duration
		dst      *time.Duration
		positive bool
	}{
		{"timeout", hc.GetTimeout(), 0, &cfg.timeout, true},
		{"interval", hc.GetInterval(), 0, &cfg.interval, true},
		{"interval_jitter", hc.GetIntervalJitter(), 0, &cfg.intervalJitter, false},
		{"initial_jitter", hc.GetInitialJitter(), 0, &cfg.initialJitter, false},
		{"no_traffic_interval", hc.GetNoTrafficInterval(), defaultNoTrafficInterval, &cfg.noTrafficInterval, true},
	}
	for _, f := range durations {
		if *f.dst, err = xdsutil.Duration(f.d, f.def); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if f.positive && *f.dst <= 0 {
			return nil, fmt.Errorf("%s must be positive", f.name)
		}
	}
	cfg.jitterPercent = hc.GetIntervalJitterPercent()
	if hc.GetUnhealthyThreshold() == nil {
		return nil, errors.New("unhealthy_threshold is required")
	}
	if hc.GetHealthyThreshold() == nil {
		return nil, errors.New("healthy_threshold is required")
	}
	cfg.unhealthyThreshold = max(hc.GetUnhealthyThreshold().GetValue(), 1)
	cfg.healthyThreshold = max(hc.GetHealthyThreshold().GetValue(), 1)
	if r := hc.GetReuseConnection(); r != nil {
		cfg.reuse = r.GetValue()
	}
	switch {
	case hc.GetHttpHealthCheck() != nil:
		cfg.kind = checkHTTP
		err = cfg.parseHTTP(hc.GetHttpHealthCheck())
	case hc.GetTcpHealthCheck() != nil:
		cfg.kind = checkTCP
		err = cfg.parseTCP(hc.GetTcpHealthCheck())
	case hc.GetGrpcHealthCheck() != nil:
		cfg.kind = checkGRPC
		cfg.service = hc.GetGrpcHealthCheck().GetServiceName()
		cfg.authority = hc.GetGrpcHealthCheck().GetAuthority()
	default:
		return nil, errors.New("one of http_health_check, tcp_health_check or grpc_health_check is required")
	}
	return cfg, err
}

func (cfg *hcConfig) parseHTTP(h *corev3.HealthCheck_HttpHealthCheck) error {
	cfg.path = h.GetPath()
	if cfg.path == "" || !strings.HasPrefix(cfg.path, "/") {
		return fmt.Errorf("http_health_check.path %q must start with /", cfg.path)
	}
	if _, err := url.ParseRequestURI(cfg.path); err != nil {
		return fmt.Errorf("http_health_check.path: %w", err)
	}
	for i, r := range h.GetExpectedStatuses() {
		if r.GetStart() < 100 || r.GetEnd() > 600 || r.GetStart() >= r.GetEnd() {
			return fmt.Errorf("http_health_check.expected_statuses[%d] [%d, %d) is not a range within [100, 600)", i, r.GetStart(), r.GetEnd())
		}
		cfg.expected = append(cfg.expected, [2]int64{r.GetStart(), r.GetEnd()})
	}
	if len(cfg.expected) == 0 {
		cfg.expected = [][2]int64{{200, 201}}
	}
	for i, hv := range h.GetRequestHeadersToAdd() {
		k := hv.GetHeader().GetKey()
		if k == "" || strings.HasPrefix(k, ":") && k != ":authority" {
			return fmt.Errorf("http_health_check.request_headers_to_add[%d].header.key %q is not a header name", i, k)
		}
	}
	cfg.headers = h.GetRequestHeadersToAdd()
	return nil
}

func (cfg *hcConfig) parseTCP(t *corev3.HealthCheck_TcpHealthCheck) error {
	var err error
	if s := t.GetSend(); s != nil {
		if cfg.send, err = payload(s); err != nil {
			return fmt.Errorf("tcp_health_check.send: %w", err)
		}
	}
	for i, r := range t.GetReceive() {
		b, err := payload(r)
		if err != nil {
			return fmt.Errorf("tcp_health_check.receive[%d]: %w", i, err)
		}
		if len(b) > 0 {
			cfg.receive = append(cfg.receive, b)
		}
	}
	return nil
}

// payload decodes a HealthCheck.Payload: text is hex, as in Envoy
// ("000000FF").
func payload(p *corev3.HealthCheck_Payload) ([]byte, error) {
	switch v := p.GetPayload().(type) {
	case *corev3.HealthCheck_Payload_Text:
		b, err := hex.DecodeString(v.Text)
		if err != nil {
			return nil, fmt.Errorf("text is not hex: %w", err)
		}
		return b, nil
	case *corev3.HealthCheck_Payload_Binary:
		return v.Binary, nil
	}
	return nil, nil
}

// hcState is a host's active health checking state, only touched by the
// host's checking goroutine.
type hcState struct {
	successes, failures uint32
	everHealthy         bool
	conn                *tcpCheckConn // TCP: the reused connection
}

// hcStats are Envoy's health_check.* metrics of a cluster.
type hcStats struct {
	attempt        *stats.Counter
	success        *stats.Counter
	failure        *stats.Counter
	networkFailure *stats.Counter
	healthy        *stats.Gauge
}

// healthChecker runs a cluster's active health checks: one goroutine per
// host, started and stopped as hosts come and go, all stopped with the
// cluster.
type healthChecker struct {
	c     *Cluster
	cfg   *hcConfig
	stats hcStats
	http  *http.Transport // HTTP and gRPC checks

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	running map[*host]context.CancelFunc
	stopped bool
	wg      sync.WaitGroup
}

func newHealthChecker(c *Cluster, hc *corev3.HealthCheck, reg stats.Registry) (*healthChecker, error) {
	cfg, err := parseHealthCheck(hc)
	if err != nil {
		return nil, err
	}
	sc := stats.NewScope(reg, "cluster."+c.name+".health_check")
	h := &healthChecker{c: c, cfg: cfg, running: map[*host]context.CancelFunc{}, stats: hcStats{
		attempt:        sc.Counter("attempt"),
		success:        sc.Counter("success"),
		failure:        sc.Counter("failure"),
		networkFailure: sc.Counter("network_failure"),
		healthy:        sc.Gauge("healthy"),
	}}
	if cfg.kind != checkTCP {
		h.http = c.checkTransport(cfg.kind == checkGRPC, !cfg.reuse)
	}
	return h, nil
}

// start checks the current members and those that come later.
func (hc *healthChecker) start() {
	hc.mu.Lock()
	if hc.ctx != nil || hc.stopped {
		hc.mu.Unlock()
		return
	}
	hc.ctx, hc.cancel = context.WithCancel(context.Background())
	hc.mu.Unlock()
	if m := hc.c.lb.members.Load(); m != nil {
		hc.sync(m.hosts)
	}
}

// sync starts checking the hosts that are new and stops checking those
// that left.
func (hc *healthChecker) sync(hosts []*host) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.ctx == nil || hc.stopped {
		return
	}
	keep := make(map[*host]bool, len(hosts))
	for _, h := range hosts {
		keep[h] = true
		if hc.running[h] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(hc.ctx)
		hc.running[h] = cancel
		hc.wg.Add(1)
		go hc.loop(ctx, h)
	}
	for h, cancel := range hc.running {
		if !keep[h] {
			cancel()
			delete(hc.running, h)
		}
	}
}

// stop ends all checking and waits for the checks in progress to end
// (they are cancelled).
func (hc *healthChecker) stop() {
	hc.mu.Lock()
	hc.stopped = true
	if hc.cancel != nil {
		hc.cancel()
	}
	hc.mu.Unlock()
	hc.wg.Wait()
	if hc.http != nil {
		hc.http.CloseIdleConnections()
	}
}

// loop checks one host: first after a random part of initial_jitter, then
// each interval (no_traffic_interval while the cluster has seen no
// traffic) plus the jitters.
func (hc *healthChecker) loop(ctx context.Context, h *host) {
	defer hc.wg.Done()
	defer h.hc.closeConn()
	wait := randDuration(hc.cfg.initialJitter)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ok := hc.check(ctx, h)
		if ctx.Err() != nil {
			return
		}
		hc.report(h, ok)
		wait = hc.next()
		if !hc.c.traffic.Load() {
			// Wait for no_traffic_interval, or interval once traffic
			// starts.
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				wait = 0
			case <-hc.c.trafficCh:
				t.Stop()
				wait = hc.next()
			}
		}
	}
}

// next is the wait before the next check.
func (hc *healthChecker) next() time.Duration {
	cfg := hc.cfg
	base := cfg.interval
	if !hc.c.traffic.Load() {
		base = cfg.noTrafficInterval
	}
	return base + randDuration(cfg.intervalJitter) + randDuration(cfg.interval*time.Duration(cfg.jitterPercent)/100)
}

func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// check runs one check of h within timeout.
func (hc *healthChecker) check(ctx context.Context, h *host) bool {
	hc.stats.attempt.Inc()
	ctx, cancel := context.WithTimeout(ctx, hc.cfg.timeout)
	defer cancel()
	var err error
	switch hc.cfg.kind {
	case checkHTTP:
		err = hc.checkHTTP(ctx, h.addr)
	case checkTCP:
		err = hc.checkTCP(ctx, h)
	case checkGRPC:
		err = hc.checkGRPC(ctx, h.addr)
	}
	if err == nil {
		hc.stats.success.Inc()
		return true
	}
	if errors.Is(err, errCheckFailed) {
		hc.stats.failure.Inc()
	} else {
		hc.stats.networkFailure.Inc()
		hc.stats.failure.Inc()
	}
	return false
}

// errCheckFailed marks a check that got an answer, and not the expected
// one (as opposed to a network failure).
var errCheckFailed = errors.New("health check failed")

// report applies one check result to h: unhealthy after
// unhealthy_threshold failures in a row, healthy again after
// healthy_threshold successes in a row (a new host after its first
// success, as in Envoy).
func (hc *healthChecker) report(h *host, ok bool) {
	s := &h.hc
	changed := false
	if ok {
		s.failures = 0
		s.successes++
		if h.hcFailed.Load() && (!s.everHealthy || s.successes >= hc.cfg.healthyThreshold) {
			h.hcFailed.Store(false)
			s.everHealthy = true
			changed = true
		}
	} else {
		s.successes = 0
		s.failures++
		if !h.hcFailed.Load() && s.failures >= hc.cfg.unhealthyThreshold {
			h.hcFailed.Store(true)
			changed = true
		}
	}
	if changed {
		hc.c.healthChanged()
		hc.updateHealthy()
	}
}

func (hc *healthChecker) updateHealthy() {
	m := hc.c.lb.members.Load()
	if m == nil {
		return
	}
	n := 0
	for _, h := range m.byAddr {
		if !h.hcFailed.Load() {
			n++
		}
	}
	hc.stats.healthy.Set(int64(n))
}
