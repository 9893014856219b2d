package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
// quoted. ?filter=REGEX keeps the matching names.
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
	slices.Sort(lines)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// prometheus answers the stats in the Prometheus text exposition format,
// named as Envoy names them there: "envoy_" + the name with the cluster,
// listener address, HTTP and TCP stat prefixes and response code class pulled out
// into labels (cluster.backend.upstream_rq_2xx becomes
// envoy_cluster_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="2"}),
// so dashboards built for Envoy work. Text readouts are left out, as
// Envoy does by default.
func (s *Server) prometheus(w http.ResponseWriter, _ *http.Request) {
	values, _ := s.collect()
	families := map[string][]string{}
	for k, v := range values {
		name, labels := promName(k)
		families[name] = append(families[name], name+labels+" "+strconv.FormatUint(v, 10))
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, name := range sortedKeys(families) {
		series := families[name]
		slices.Sort(series)
		fmt.Fprintf(w, "# TYPE %s untyped\n", name)
		for _, l := range series {
			fmt.Fprintln(w, l)
		}
	}
}

// tagRule pulls one label out of a stat name: the first submatch is cut
// from the name, the second is the label's value.
type tagRule struct {
	label string
	re    *regexp.Regexp
}

var tagRules = []tagRule{
	{"envoy_cluster_name", regexp.MustCompile(`^cluster\.(([^.]+)\.)`)},
	{"envoy_listener_address", regexp.MustCompile(`^listener\.((\d+\.\d+\.\d+\.\d+_\d+|\[[^\]]*\]_\d+|[^.]+)\.)`)},
	{"envoy_http_conn_manager_prefix", regexp.MustCompile(`^http\.(([^.]+)\.)`)},
	{"envoy_tcp_prefix", regexp.MustCompile(`^tcp\.((.+)\.)[^.]+$`)},
}

// codeClass matches the response code class of a counter such as
// upstream_rq_2xx; the digit becomes a label and the name ends in _rq_xx.
var codeClass = regexp.MustCompile(`_rq_(\d)xx$`)

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// promName turns a dotted stat name into a Prometheus metric name and its
// rendered label set.
func promName(stat string) (string, string) {
	var labels []string
	for _, r := range tagRules {
		if m := r.re.FindStringSubmatchIndex(stat); m != nil {
			labels = append(labels, r.label+`="`+escapeLabel(stat[m[4]:m[5]])+`"`)
			stat = stat[:m[2]] + stat[m[3]:]
		}
	}
	if m := codeClass.FindStringSubmatchIndex(stat); m != nil {
		labels = append(labels, `envoy_response_code_class="`+stat[m[2]:m[3]]+`"`)
		stat = stat[:m[2]] + stat[m[3]:]
	}
	name := "envoy_" + invalidNameChars.ReplaceAllString(stat, "_")
	if len(labels) == 0 {
		return name, ""
	}
	return name, "{" + strings.Join(labels, ",") + "}"
}

// escapeLabel escapes a label value for the text format.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
