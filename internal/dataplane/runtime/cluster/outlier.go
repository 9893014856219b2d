package cluster

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Envoy's outlier detection defaults.
const (
	defaultODInterval      = 10 * time.Second
	defaultBaseEjection    = 30 * time.Second
	defaultMaxEjectionTime = 300 * time.Second
)

// outlierConfig is a validated outlier_detection.
type outlierConfig struct {
	interval, baseEjection, maxEjection time.Duration
	maxEjectionPercent                  uint32
	split                               bool

	consecutive5xx, enforcing5xx         uint32
	consecutiveGateway, enforcingGateway uint32
	consecutiveLocal, enforcingLocal     uint32

	srMinHosts, srVolume, enforcingSR uint32
	enforcingLocalSR                  uint32
	srStdevFactor                     float64 // success_rate_stdev_factor / 1000

	fpThreshold, fpMinHosts, fpVolume uint32
	enforcingFP, enforcingFPLocal     uint32
}

func parseOutlier(od *clusterv3.OutlierDetection) (*outlierConfig, error) {
	cfg := &outlierConfig{}
	var err error
	if cfg.interval, err = xdsutil.Duration(od.GetInterval(), defaultODInterval); err != nil {
		return nil, fmt.Errorf("interval: %w", err)
	}
	if cfg.interval == 0 {
		return nil, fmt.Errorf("interval must be positive")
	}
	if cfg.baseEjection, err = xdsutil.Duration(od.GetBaseEjectionTime(), defaultBaseEjection); err != nil {
		return nil, fmt.Errorf("base_ejection_time: %w", err)
	}
	cfg.maxEjection = max(defaultMaxEjectionTime, cfg.baseEjection)
	cfg.split = od.GetSplitExternalLocalOriginErrors()
	u := func(v *wrapperspb.UInt32Value, def uint32) uint32 {
		if v == nil {
			return def
		}
		return v.GetValue()
	}
	cfg.maxEjectionPercent = u(od.GetMaxEjectionPercent(), 10)
	cfg.consecutive5xx = u(od.GetConsecutive_5Xx(), 5)
	cfg.enforcing5xx = u(od.GetEnforcingConsecutive_5Xx(), 100)
	cfg.consecutiveGateway = u(od.GetConsecutiveGatewayFailure(), 5)
	cfg.enforcingGateway = u(od.GetEnforcingConsecutiveGatewayFailure(), 0)
	cfg.consecutiveLocal = u(od.GetConsecutiveLocalOriginFailure(), 5)
	cfg.enforcingLocal = u(od.GetEnforcingConsecutiveLocalOriginFailure(), 100)
	cfg.srMinHosts = u(od.GetSuccessRateMinimumHosts(), 5)
	cfg.srVolume = u(od.GetSuccessRateRequestVolume(), 100)
	cfg.srStdevFactor = float64(u(od.GetSuccessRateStdevFactor(), 1900)) / 1000
	cfg.enforcingSR = u(od.GetEnforcingSuccessRate(), 100)
	cfg.enforcingLocalSR = u(od.GetEnforcingLocalOriginSuccessRate(), 100)
	cfg.fpThreshold = u(od.GetFailurePercentageThreshold(), 85)
	cfg.fpMinHosts = u(od.GetFailurePercentageMinimumHosts(), 5)
	cfg.fpVolume = u(od.GetFailurePercentageRequestVolume(), 50)
	cfg.enforcingFP = u(od.GetEnforcingFailurePercentage(), 0)
	cfg.enforcingFPLocal = u(od.GetEnforcingFailurePercentageLocalOrigin(), 0)
	for _, p := range []struct {
		name string
		v    uint32
	}{
		{"max_ejection_percent", cfg.maxEjectionPercent},
		{"enforcing_consecutive_5xx", cfg.enforcing5xx},
		{"enforcing_consecutive_gateway_failure", cfg.enforcingGateway},
		{"enforcing_consecutive_local_origin_failure", cfg.enforcingLocal},
		{"enforcing_success_rate", cfg.enforcingSR},
		{"enforcing_local_origin_success_rate", cfg.enforcingLocalSR},
		{"failure_percentage_threshold", cfg.fpThreshold},
		{"enforcing_failure_percentage", cfg.enforcingFP},
		{"enforcing_failure_percentage_local_origin", cfg.enforcingFPLocal},
	} {
		if p.v > 100 {
			return nil, fmt.Errorf("%s %d is out of range 0-100", p.name, p.v)
		}
	}
	return cfg, nil
}

// outlierState is a host's outlier detection state, guarded by mu.
type outlierState struct {
	mu sync.Mutex
	// Consecutive failure counts.
	c5xx, cGateway, cLocal uint32
	// Outcomes in the current interval: external (responses; all
	// outcomes unless split_external_local_origin_errors) and local
	// origin (split only).
	extOK, extFail, locOK, locFail uint64
	// Ejection.
	ejectedAt time.Time
	ejectFor  time.Duration
	ejections uint32 // times ejected, lowered by one each interval the host stays in
}

// outlierStats are Envoy's outlier_detection.* metrics.
type outlierStats struct {
	active              *stats.Gauge
	enforcedTotal       *stats.Counter
	overflow            *stats.Counter
	enforced5xx         *stats.Counter
	enforcedGateway     *stats.Counter
	enforcedLocal       *stats.Counter
	enforcedSuccessRate *stats.Counter
	enforcedFailurePct  *stats.Counter
	detected5xx         *stats.Counter
	detectedGateway     *stats.Counter
	detectedLocal       *stats.Counter
}

// outlierDetector is a cluster's passive health checking: it ejects hosts
// on consecutive failures (as they happen) and on success rate and
// failure percentage (each interval), and brings them back after
// base_ejection_time × the number of times they were ejected.
type outlierDetector struct {
	c     *Cluster
	cfg   *outlierConfig
	stats outlierStats

	mu     sync.Mutex // serializes ejection decisions
	ticker *time.Ticker
	done   chan struct{}
	wg     sync.WaitGroup
}

func newOutlierDetector(c *Cluster, od *clusterv3.OutlierDetection, reg stats.Registry) (*outlierDetector, error) {
	cfg, err := parseOutlier(od)
	if err != nil {
		return nil, err
	}
	sc := stats.NewScope(reg, "cluster."+c.name+".outlier_detection")
	return &outlierDetector{c: c, cfg: cfg, stats: outlierStats{
		active:              sc.Gauge("ejections_active"),
		enforcedTotal:       sc.Counter("ejections_enforced_total"),
		overflow:            sc.Counter("ejections_overflow"),
		enforced5xx:         sc.Counter("ejections_enforced_consecutive_5xx"),
		enforcedGateway:     sc.Counter("ejections_enforced_consecutive_gateway_failure"),
		enforcedLocal:       sc.Counter("ejections_enforced_consecutive_local_origin_failure"),
		enforcedSuccessRate: sc.Counter("ejections_enforced_success_rate"),
		enforcedFailurePct:  sc.Counter("ejections_enforced_failure_percentage"),
		detected5xx:         sc.Counter("ejections_detected_consecutive_5xx"),
		detectedGateway:     sc.Counter("ejections_detected_consecutive_gateway_failure"),
		detectedLocal:       sc.Counter("ejections_detected_consecutive_local_origin_failure"),
	}}, nil
}

// start runs the interval timer.
func (d *outlierDetector) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		return
	}
	d.done = make(chan struct{})
	d.ticker = time.NewTicker(d.cfg.interval)
	d.wg.Add(1)
	go d.run(d.ticker, d.done)
}

// stop ends the interval timer (for good).
func (d *outlierDetector) stop() {
	d.mu.Lock()
	if d.done == nil || d.ticker == nil {
		d.mu.Unlock()
		return
	}
	d.ticker.Stop()
	d.ticker = nil
	close(d.done)
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *outlierDetector) run(t *time.Ticker, done chan struct{}) {
	defer d.wg.Done()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			d.tick(now)
		}
	}
}

// outcome classes of one attempt.
type outcomeClass struct {
	localOrigin bool // a local-origin event (split only)
	failed      bool
	gateway     bool // 502, 503, 504 or (unsplit) a local-origin failure
}

func (d *outlierDetector) classify(o Outcome) outcomeClass {
	switch {
	case o.Status == 0 && o.Err != nil && o.LocalOrigin:
		if d.cfg.split {
			return outcomeClass{localOrigin: true, failed: true}
		}
		// As Envoy without the split: a connect failure, timeout or
		// reset counts as a 503 from the host.
		return outcomeClass{failed: true, gateway: true}
	case o.Status == 0 && o.Err != nil:
		return outcomeClass{failed: true, gateway: true}
	case o.Status >= 500:
		return outcomeClass{failed: true, gateway: o.Status == 502 || o.Status == 503 || o.Status == 504}
	case o.Status == 0 && d.cfg.split:
		return outcomeClass{localOrigin: true} // a connection made
	}
	return outcomeClass{}
}

// record notes the outcome of an attempt to h and ejects h when a
// consecutive failure threshold is reached.
func (d *outlierDetector) record(h *host, o Outcome) {
	cl := d.classify(o)
	s := &h.od
	var reason int
	s.mu.Lock()
	switch {
	case cl.localOrigin && cl.failed:
		s.locFail++
		s.cLocal++
		if s.cLocal >= d.cfg.consecutiveLocal {
			s.cLocal = 0
			reason = reasonLocal
		}
	case cl.localOrigin:
		s.locOK++
		s.cLocal = 0
	case cl.failed:
		if d.cfg.split {
			// A response came: the connection part went well.
			s.locOK++
			s.cLocal = 0
		}
		s.extFail++
		s.c5xx++
		if cl.gateway {
			s.cGateway++
		} else {
			s.cGateway = 0
		}
		switch {
		case s.c5xx >= d.cfg.consecutive5xx:
			reason = reason5xx
		case cl.gateway && s.cGateway >= d.cfg.consecutiveGateway:
			reason = reasonGateway
		}
		if reason != 0 {
			s.c5xx, s.cGateway = 0, 0
		}
	default:
		if d.cfg.split {
			s.locOK++
			s.cLocal = 0
		}
		s.extOK++
		s.c5xx, s.cGateway = 0, 0
	}
	s.mu.Unlock()
	if reason != 0 {
		d.detected(h, reason)
	}
}

// Ejection reasons.
const (
	reason5xx = iota + 1
	reasonGateway
	reasonLocal
	reasonSuccessRate
	reasonSuccessRateLocal
	reasonFailurePct
	reasonFailurePctLocal
)

// detected counts a detection and ejects h when the enforcing percentage
// of the reason says so.
func (d *outlierDetector) detected(h *host, reason int) {
	var enforcing uint32
	var enforced *stats.Counter
	switch reason {
	case reason5xx:
		d.stats.detected5xx.Inc()
		enforcing, enforced = d.cfg.enforcing5xx, d.stats.enforced5xx
	case reasonGateway:
		d.stats.detectedGateway.Inc()
		enforcing, enforced = d.cfg.enforcingGateway, d.stats.enforcedGateway
	case reasonLocal:
		d.stats.detectedLocal.Inc()
		enforcing, enforced = d.cfg.enforcingLocal, d.stats.enforcedLocal
	case reasonSuccessRate:
		enforcing, enforced = d.cfg.enforcingSR, d.stats.enforcedSuccessRate
	case reasonSuccessRateLocal:
		enforcing, enforced = d.cfg.enforcingLocalSR, d.stats.enforcedSuccessRate
	case reasonFailurePct:
		enforcing, enforced = d.cfg.enforcingFP, d.stats.enforcedFailurePct
	case reasonFailurePctLocal:
		enforcing, enforced = d.cfg.enforcingFPLocal, d.stats.enforcedFailurePct
	}
	if enforcing == 0 || enforcing < 100 && rand.Uint32N(100) >= enforcing {
		return
	}
	if d.eject(h, time.Now()) {
		enforced.Inc()
	}
}

// eject takes h out of load balancing unless it is out already or
// max_ejection_percent of the hosts are (ejections_overflow).
func (d *outlierDetector) eject(h *host, now time.Time) bool {
	d.mu.Lock()
	m := d.c.lb.members.Load()
	if h.ejected.Load() || m == nil || m.byAddr[h.addr] != h {
		d.mu.Unlock()
		return false
	}
	ejected := 0
	for _, x := range m.byAddr {
		if x.ejected.Load() {
			ejected++
		}
	}
	if 100*ejected >= int(d.cfg.maxEjectionPercent)*len(m.byAddr) {
		d.mu.Unlock()
		d.stats.overflow.Inc()
		return false
	}
	s := &h.od
	s.mu.Lock()
	s.ejections++
	s.ejectedAt = now
	s.ejectFor = min(d.cfg.baseEjection*time.Duration(s.ejections), d.cfg.maxEjection)
	s.mu.Unlock()
	h.ejected.Store(true)
	d.stats.active.Set(int64(ejected + 1))
	d.stats.enforcedTotal.Inc()
	d.mu.Unlock()
	d.c.healthChanged()
	return true
}

// tick runs at each interval: hosts whose ejection time is over come
// back, and success rate and failure percentage are evaluated over the
// interval's outcomes, which then start again.
func (d *outlierDetector) tick(now time.Time) {
	m := d.c.lb.members.Load()
	if m == nil {
		return
	}
	changed := false
	type volume struct {
		h            *host
		ok, fail     uint64
		locOK, locFl uint64
	}
	var vols []volume
	var active int64
	d.mu.Lock()
	for _, h := range m.hosts {
		s := &h.od
		s.mu.Lock()
		if h.ejected.Load() {
			if now.Sub(s.ejectedAt) >= s.ejectFor {
				h.ejected.Store(false)
				s.c5xx, s.cGateway, s.cLocal = 0, 0, 0
				changed = true
			}
		} else {
			if s.ejections > 0 {
				s.ejections--
			}
			vols = append(vols, volume{h: h, ok: s.extOK, fail: s.extFail, locOK: s.locOK, locFl: s.locFail})
		}
		s.extOK, s.extFail, s.locOK, s.locFail = 0, 0, 0, 0
		s.mu.Unlock()
		if h.ejected.Load() {
			active++
		}
	}
	d.stats.active.Set(active)
	d.mu.Unlock()
	if changed {
		d.c.healthChanged()
	}
	var ext, loc []hostRate
	for _, v := range vols {
		ext = append(ext, hostRate{v.h, v.ok, v.fail})
		if d.cfg.split {
			loc = append(loc, hostRate{v.h, v.locOK, v.locFl})
		}
	}
	for _, h := range d.successRateOutliers(ext) {
		d.detected(h, reasonSuccessRate)
	}
	for _, h := range d.failurePctOutliers(ext) {
		d.detected(h, reasonFailurePct)
	}
	if d.cfg.split {
		for _, h := range d.successRateOutliers(loc) {
			d.detected(h, reasonSuccessRateLocal)
		}
		for _, h := range d.failurePctOutliers(loc) {
			d.detected(h, reasonFailurePctLocal)
		}
	}
}

// hostRate is one host's outcomes over an interval.
type hostRate struct {
	h        *host
	ok, fail uint64
}

// successRateOutliers returns the hosts whose success rate is below the
// mean less success_rate_stdev_factor standard deviations, among the
// hosts with success_rate_request_volume outcomes, when at least
// success_rate_minimum_hosts of them have.
func (d *outlierDetector) successRateOutliers(rates []hostRate) []*host {
	var in []hostRate
	for _, r := range rates {
		if r.ok+r.fail >= uint64(max(d.cfg.srVolume, 1)) {
			in = append(in, r)
		}
	}
	if len(in) == 0 || len(in) < int(d.cfg.srMinHosts) {
		return nil
	}
	var sum float64
	sr := make([]float64, len(in))
	for i, r := range in {
		sr[i] = 100 * float64(r.ok) / float64(r.ok+r.fail)
		sum += sr[i]
	}
	mean := sum / float64(len(in))
	var variance float64
	for _, x := range sr {
		variance += (x - mean) * (x - mean)
	}
	stdev := math.Sqrt(variance / float64(len(in)))
	limit := mean - d.cfg.srStdevFactor*stdev
	var out []*host
	for i, r := range in {
		if sr[i] < limit {
			out = append(out, r.h)
		}
	}
	return out
}

// failurePctOutliers returns the hosts whose failure percentage reaches
// failure_percentage_threshold, among the hosts with
// failure_percentage_request_volume outcomes, when at least
// failure_percentage_minimum_hosts of them have.
func (d *outlierDetector) failurePctOutliers(rates []hostRate) []*host {
	var in []hostRate
	for _, r := range rates {
		if r.ok+r.fail >= uint64(max(d.cfg.fpVolume, 1)) {
			in = append(in, r)
		}
	}
	if len(in) == 0 || len(in) < int(d.cfg.fpMinHosts) {
		return nil
	}
	var out []*host
	for _, r := range in {
		if 100*r.fail >= uint64(d.cfg.fpThreshold)*(r.ok+r.fail) {
			out = append(out, r.h)
		}
	}
	return out
}
