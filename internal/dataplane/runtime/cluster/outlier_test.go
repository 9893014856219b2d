package cluster

import (
	"errors"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func withOutlier(def *clusterv3.Cluster, od *clusterv3.OutlierDetection) *clusterv3.Cluster {
	def.OutlierDetection = od
	return def
}

// TestOutlierConsecutive5xx: a backend answering 503 is ejected after
// consecutive_5xx answers, gets no traffic for base_ejection_time, then
// comes back.
func TestOutlierConsecutive5xx(t *testing.T) {
	good, bad := newBackend(t, "good"), newBackend(t, "bad")
	bad.status.Store(503)
	m, st := testManager(t)
	c := install(t, m, st, withOutlier(staticCluster("o", []string{good.addr, bad.addr}), &clusterv3.OutlierDetection{
		Interval:           durationpb.New(50 * time.Millisecond),
		BaseEjectionTime:   durationpb.New(500 * time.Millisecond),
		MaxEjectionPercent: wrapperspb.UInt32(50),
		Consecutive_5Xx:    wrapperspb.UInt32(3),
	})).Get("o")
	for bad.hits.Load() < 3 {
		get(t, c, "/")
	}
	if got := st.Snapshot()["cluster.o.outlier_detection.ejections_active"]; got != 1 {
		t.Fatalf("ejections_active = %d after 3 consecutive 503s", got)
	}
	before := bad.hits.Load()
	for range 20 {
		if code, body := get(t, c, "/"); code != 200 || body != "good" {
			t.Fatalf("got %d %q while bad is ejected", code, body)
		}
	}
	if bad.hits.Load() != before {
		t.Fatal("the ejected backend got traffic")
	}
	ejectedAt := time.Now()
	bad.status.Store(200)
	waitFor(t, 5*time.Second, "the ejected host back", func() bool {
		return st.Snapshot()["cluster.o.outlier_detection.ejections_active"] == 0
	})
	if d := time.Since(ejectedAt); d < 400*time.Millisecond {
		t.Fatalf("back after %s, base_ejection_time is 500ms", d)
	}
	for bad.hits.Load() == before {
		get(t, c, "/")
	}
	s := st.Snapshot()
	if s["cluster.o.outlier_detection.ejections_enforced_total"] != 1 || s["cluster.o.outlier_detection.ejections_enforced_consecutive_5xx"] != 1 {
		t.Fatalf("stats %v", s)
	}
}

// TestOutlierMaxEjectionPercent: with both hosts failing, only as many are
// ejected as max_ejection_percent allows.
func TestOutlierMaxEjectionPercent(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	a.status.Store(500)
	b.status.Store(500)
	m, st := testManager(t)
	c := install(t, m, st, withOutlier(staticCluster("o", []string{a.addr, b.addr}), &clusterv3.OutlierDetection{
		Interval:           durationpb.New(time.Hour),
		MaxEjectionPercent: wrapperspb.UInt32(50),
		Consecutive_5Xx:    wrapperspb.UInt32(2),
	})).Get("o")
	for range 20 {
		get(t, c, "/")
	}
	s := st.Snapshot()
	if s["cluster.o.outlier_detection.ejections_active"] != 1 || s["cluster.o.outlier_detection.ejections_overflow"] == 0 {
		t.Fatalf("active %d overflow %d", s["cluster.o.outlier_detection.ejections_active"], s["cluster.o.outlier_detection.ejections_overflow"])
	}
}

// TestOutlierLocalOrigin: connect failures to a closed port eject with
// split_external_local_origin_errors on consecutive_local_origin_failure;
// 5xx answers do not count there.
func TestOutlierLocalOrigin(t *testing.T) {
	good := newBackend(t, "good")
	closed := freePort(t)
	m, st := testManager(t)
	c := install(t, m, st, withOutlier(staticCluster("o", []string{good.addr, closed}), &clusterv3.OutlierDetection{
		Interval:                       durationpb.New(time.Hour),
		MaxEjectionPercent:             wrapperspb.UInt32(50),
		SplitExternalLocalOriginErrors: true,
		ConsecutiveLocalOriginFailure:  wrapperspb.UInt32(2),
		Consecutive_5Xx:                wrapperspb.UInt32(100),
	})).Get("o")
	for range 10 {
		get(t, c, "/")
	}
	s := st.Snapshot()
	if s["cluster.o.outlier_detection.ejections_enforced_consecutive_local_origin_failure"] != 1 {
		t.Fatalf("stats %v", s)
	}
	for range 10 {
		if code, _ := get(t, c, "/"); code != 200 {
			t.Fatalf("got %d with the closed port ejected", code)
		}
	}
}

// TestOutlierFailurePercentage: evaluated each interval over the hosts
// with enough requests.
func TestOutlierFailurePercentage(t *testing.T) {
	good, bad := newBackend(t, "good"), newBackend(t, "bad")
	m, st := testManager(t)
	c := install(t, m, st, withOutlier(staticCluster("o", []string{good.addr, bad.addr}), &clusterv3.OutlierDetection{
		Interval:                       durationpb.New(300 * time.Millisecond),
		MaxEjectionPercent:             wrapperspb.UInt32(50),
		Consecutive_5Xx:                wrapperspb.UInt32(1000),
		FailurePercentageThreshold:     wrapperspb.UInt32(50),
		FailurePercentageMinimumHosts:  wrapperspb.UInt32(2),
		FailurePercentageRequestVolume: wrapperspb.UInt32(5),
		EnforcingFailurePercentage:     wrapperspb.UInt32(100),
	})).Get("o")
	// Every other request to bad fails: 50% >= threshold.
	h := c.lb.host(bad.addr)
	hg := c.lb.host(good.addr)
	for i := range 10 {
		r, _ := c.Begin(false)
		status := 200
		if i%2 == 0 {
			status = 500
		}
		r.Done(h.addr, Outcome{Status: status})
		r, _ = c.Begin(false)
		r.Done(hg.addr, Outcome{Status: 200})
	}
	waitFor(t, 5*time.Second, "failure percentage ejection", func() bool { return h.ejected.Load() })
	if hg.ejected.Load() {
		t.Fatal("the good host was ejected")
	}
	if st.Snapshot()["cluster.o.outlier_detection.ejections_enforced_failure_percentage"] != 1 {
		t.Fatal("ejections_enforced_failure_percentage not counted")
	}
}

func TestOutlierSuccessRate(t *testing.T) {
	d := &outlierDetector{cfg: &outlierConfig{srMinHosts: 3, srVolume: 10, srStdevFactor: 1}}
	hosts := []*host{{addr: "a"}, {addr: "b"}, {addr: "c"}, {addr: "d"}}
	rates := []hostRate{{hosts[0], 100, 0}, {hosts[1], 99, 1}, {hosts[2], 100, 0}, {hosts[3], 10, 90}}
	out := d.successRateOutliers(rates)
	if len(out) != 1 || out[0] != hosts[3] {
		t.Fatalf("outliers %v", out)
	}
	if out := d.successRateOutliers(rates[:2]); out != nil {
		t.Fatalf("below success_rate_minimum_hosts: %v", out)
	}
}

func TestOutlierValidation(t *testing.T) {
	_, err := parseOutlier(&clusterv3.OutlierDetection{EnforcingConsecutive_5Xx: wrapperspb.UInt32(101)})
	if !errContains(err, "enforcing_consecutive_5xx 101 is out of range") {
		t.Fatalf("err = %v", err)
	}
	m, st := testManager(t)
	_, err = prepare(m, st, withOutlier(staticCluster("o", addrs(1)), &clusterv3.OutlierDetection{Interval: durationpb.New(-time.Second)}))
	if !errContains(err, `cluster "o": outlier_detection: interval:`) {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, ErrOverflow) {
		t.Fatal("unrelated error")
	}
}
