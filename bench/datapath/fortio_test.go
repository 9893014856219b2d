package main

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

// A fortio result as "fortio load -json" writes it, trimmed to the fields
// read, with two failed requests and a 503.
const fortioJSON = `{
  "ActualQPS": 999.5,
  "ActualDuration": 10005000000,
  "DurationHistogram": {"Count": 10, "Min": 0.0001, "Max": 0.0004, "Sum": 0.002,
    "Data": [{"Start": 0.0001, "End": 0.0002, "Percent": 50, "Count": 5},
             {"Start": 0.0002, "End": 0.0004, "Percent": 100, "Count": 5}]},
  "ErrorsDurationHistogram": {"Count": 2, "Min": 0.001, "Max": 0.002, "Data": []},
  "RetCodes": {"-1": 1, "200": 9, "503": 1},
  "Sizes": {"Count": 10, "Min": 900, "Max": 1200}
}`

func TestFortioProblems(t *testing.T) {
	var r fortioRun
	if err := json.Unmarshal([]byte(fortioJSON), &r); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2 requests failed",
		"1 responses with status -1",
		"1 responses with status 503",
		"a response of 900 bytes (want at least 1024)",
	}
	if got := r.problems(1024); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	r.ErrorsDurationHistogram.Count = 0
	r.RetCodes = map[string]int64{"200": 10}
	r.Sizes.Min = 1200
	if got := r.problems(1024); len(got) != 0 {
		t.Errorf("problems of a clean run: %q", got)
	}
}

func TestHistogramPercentile(t *testing.T) {
	var r fortioRun
	if err := json.Unmarshal([]byte(fortioJSON), &r); err != nil {
		t.Fatal(err)
	}
	var h histogram
	h.add(r.DurationHistogram)
	// Within one run: linear interpolation inside the buckets, as fortio.
	for _, c := range []struct{ p, want float64 }{{50, 0.0002}, {25, 0.00015}, {90, 0.00036}, {100, 0.0004}} {
		if got := h.percentile(c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("one run: p%v = %v, want %v", c.p, got, c.want)
		}
	}
	// Two runs merged: a second, slower run of 10 values in [1, 2] ms
	// puts the median at the boundary and p75 in its middle.
	h.add(fortioHistogram{Count: 10, Min: 0.001, Max: 0.002, Data: []struct {
		Start, End float64
		Count      int64
	}{{0.001, 0.002, 10}}})
	for _, c := range []struct{ p, want float64 }{{50, 0.0004}, {75, 0.0015}, {100, 0.002}} {
		if got := h.percentile(c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("merged: p%v = %v, want %v", c.p, got, c.want)
		}
	}
}
