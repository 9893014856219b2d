package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// fortioResolution is fortio's histogram resolution (-r), in seconds.
// Its buckets are multiples of it (1, 2, ... 10, 12, ... 20, 25, ... 100,
// 120, ...), so at 10 µs a latency of 0.1–1 ms falls in a bucket 20–100 µs
// wide and one of 1–2 ms in a 200 µs one; percentiles are interpolated
// linearly within a bucket, as fortio does.
const fortioResolution = "0.00001"

// fortioRun is the part of fortio's JSON result the benchmark reads.
type fortioRun struct {
	ActualQPS               float64
	ActualDuration          int64 // nanoseconds
	DurationHistogram       fortioHistogram
	ErrorsDurationHistogram fortioHistogram
	RetCodes                map[string]int64
	Sizes                   fortioHistogram
}

// fortioHistogram is one of fortio's histograms: values in seconds (or
// bytes, for Sizes), Data the non-empty buckets.
type fortioHistogram struct {
	Count    int64
	Min, Max float64
	Sum      float64
	Data     []struct {
		Start, End float64
		Count      int64
	}
}

// load is one fortio run's settings.
type load struct {
	url   string
	qps   float64 // 0: as fast as possible (closed loop)
	conns int
	dur   time.Duration
	// grpc sends fortio's gRPC pings of payload bytes (echoed back) to
	// url, a host:port, over conns connections of one stream each.
	grpc    bool
	payload int
}

// runFortio runs "fortio load" as its own process and returns its JSON
// result. Its output is kept in a log next to the JSON file.
func runFortio(ctx context.Context, bin, dir, tag string, l load) (*fortioRun, error) {
	jsonPath := filepath.Join(dir, tag+".json")
	args := []string{"load",
		"-qps", strconv.FormatFloat(l.qps, 'f', -1, 64),
		"-c", strconv.Itoa(l.conns),
		"-t", l.dur.String(),
		"-r", fortioResolution,
		"-p", "50,90,99,99.9",
		"-json", jsonPath,
		"-loglevel", "Warning",
	}
	if l.grpc {
		args = append(args, "-grpc", "-ping", "-s", "1", "-payload-size", strconv.Itoa(l.payload))
	}
	if l.qps > 0 {
		// Spread the connections' timetables over the period instead of
		// sending 16 requests at once every 16 ms.
		args = append(args, "-uniform")
	}
	args = append(args, l.url)
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(dir, tag+".log")
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fortio %v: %w; its output (%s):\n%s", args, err, logPath, tail(logPath, 15))
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		return nil, fmt.Errorf("reading fortio's result: %w", err)
	}
	var r fortioRun
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding fortio's result %s: %w", jsonPath, err)
	}
	return &r, nil
}

// problems lists what was wrong with the run's requests: any error or
// status other than 200 (gRPC: SERVING, fortio's code for an answered
// ping), or a response shorter than minSize.
func (r *fortioRun) problems(minSize int) []string {
	var p []string
	if r.DurationHistogram.Count == 0 {
		p = append(p, "no request completed")
	}
	if r.ErrorsDurationHistogram.Count > 0 {
		p = append(p, fmt.Sprintf("%d requests failed", r.ErrorsDurationHistogram.Count))
	}
	codes := make([]string, 0, len(r.RetCodes))
	for c := range r.RetCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		if c != "200" && c != "SERVING" && r.RetCodes[c] > 0 {
			p = append(p, fmt.Sprintf("%d responses with status %s", r.RetCodes[c], c))
		}
	}
	if r.Sizes.Count > 0 && r.Sizes.Min < float64(minSize) {
		p = append(p, fmt.Sprintf("a response of %.0f bytes (want at least %d)", r.Sizes.Min, minSize))
	}
	return p
}

// histogram merges the latency histograms of several fortio runs.
type histogram struct {
	buckets  []bucket
	count    int64
	min, max float64
}

// bucket holds count values spread evenly over [start, end].
type bucket struct {
	start, end float64
	count      int64
}

// add merges one run's histogram.
func (h *histogram) add(f fortioHistogram) {
	if f.Count == 0 {
		return
	}
	if h.count == 0 || f.Min < h.min {
		h.min = f.Min
	}
	if h.count == 0 || f.Max > h.max {
		h.max = f.Max
	}
	h.count += f.Count
	for _, d := range f.Data {
		h.buckets = append(h.buckets, bucket{d.Start, d.End, d.Count})
	}
}

// percentile returns the value below which p percent of the values lie,
// taking each bucket's values as spread evenly over it (fortio's own
// interpolation, which this reproduces for a single run). Buckets of
// different runs may overlap at their ends (each run's first and last
// bucket is cut at its own min and max), so it solves cdf(x) = p by
// bisection rather than walking the buckets.
func (h *histogram) percentile(p float64) float64 {
	if h.count == 0 {
		return 0
	}
	target := p / 100 * float64(h.count)
	cdf := func(x float64) float64 {
		var n float64
		for _, b := range h.buckets {
			switch {
			case x >= b.end:
				n += float64(b.count)
			case x > b.start:
				n += float64(b.count) * (x - b.start) / (b.end - b.start)
			}
		}
		return n
	}
	lo, hi := h.min, h.max
	for range 60 {
		mid := (lo + hi) / 2
		if cdf(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
