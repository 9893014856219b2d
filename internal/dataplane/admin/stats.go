package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// collect merges the values of all stats sources and their text readouts.
func (s *Server) collect() (map[string]uint64, map[string]string) {
	values := map[string]uint64{}
	texts := map[string]string{}
	for _, src := range s.opts.Stats {
		for k, v := range src.Stats() {
			values[k] = v
		}
		if tr, ok := src.(TextReadoutSource); ok {
			for k, v := range tr.TextReadouts() {
				texts[k] = v
			}
		}
	}
	return values, texts
}

// stats answers "name: value" lines sorted by name; text readouts are
// quoted, histograms show quantiles as Envoy does (quantileLine).
// ?filter=REGEX keeps the matching names.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	var filter *regexp.Regexp
	if f := r.URL.Query().Get("filter"); f != "" {
		var err error
		if filter, err = regexp.Compile(f); err != nil {
			http.Error(w, "filter: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	values, texts := s.collect()
	lines := make([]string, 0, len(values)+len(texts))
	for k, v := range values {
		if filter == nil || filter.MatchString(k) {
			lines = append(lines, k+": "+strconv.FormatUint(v, 10))
		}
	}
	for k, v := range texts {
		if filter == nil || filter.MatchString(k) {
			lines = append(lines, k+": "+strconv.Quote(v))
		}
	}
	if s.opts.Metrics != nil {
		for k, h := range s.opts.Metrics.Histograms() {
			if filter == nil || filter.MatchString(k) {
				lines = append(lines, k+": "+quantileLine(h))
			}
		}
	}
	slices.Sort(lines)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// prometheus answers the stats in the Prometheus text exposition format
// (stats.Store.Families: Envoy's names, labels, HELP and TYPE lines).
// Text readouts are left out, as Envoy does by default. Envoy's query
// parameters work: ?usedonly leaves out stats that read zero, ?filter=RE
// keeps the stats whose dotted name matches. Requests from the MeshMetric
// listener (?meshmetric=<listener>) go to Options.MeshMetric.
func (s *Server) prometheus(w http.ResponseWriter, r *http.Request) {
	if s.opts.MeshMetric != nil && r.URL.Query().Has("meshmetric") {
		s.opts.MeshMetric.ServeHTTP(w, r)
		return
	}
	opts, err := familyOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var fams []*dto.MetricFamily
	if s.opts.Metrics != nil {
		fams = s.opts.Metrics.FamiliesWith(opts)
	}
	w.Header().Set("Content-Type", stats.TextContentType)
	if err := stats.WriteText(w, fams); err != nil {
		s.log.Debug("writing /stats/prometheus", "error", err)
	}
}

// familyOptions reads Envoy's usedonly and filter query parameters.
func familyOptions(r *http.Request) (stats.FamilyOptions, error) {
	q := r.URL.Query()
	opts := stats.FamilyOptions{UsedOnly: q.Has("usedonly")}
	if f := q.Get("filter"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			return opts, fmt.Errorf("filter: %w", err)
		}
		opts.Filter = re
	}
	return opts, nil
}
