package metrics

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// DefaultScrapeTimeout bounds the scrape of an application unless the
// scraper's X-Prometheus-Scrape-Timeout-Seconds says less.
const DefaultScrapeTimeout = 5 * time.Second

// maxAppBody bounds what is read of an application's answer.
const maxAppBody = 16 << 20

// Server answers MeshMetric scrapes: the admin server hands it the
// requests to /stats/prometheus that carry ?meshmetric=<listener>, which
// is what the MeshMetric listener's route rewrites its path to.
type Server struct {
	// Store holds the proxy's stats.
	Store *stats.Store
	// Config returns the accepted configuration (where the listener and
	// its metadata are).
	Config func() *xdsconfig.Config
	// Client scrapes the applications; nil means a client with no proxy.
	Client *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ServeHTTP implements http.Handler. The query holds meshmetric (the
// listener's name), and Envoy's filter (RE2 on dotted stat names) and
// usedonly.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := cmp.Or(s.Logger, slog.Default())
	q := r.URL.Query()
	name := q.Get("meshmetric")
	var l *listenerv3.Listener
	if cfg := s.Config(); cfg != nil {
		l = cfg.Listeners[name]
	}
	if l == nil {
		http.Error(w, fmt.Sprintf("no MeshMetric listener %q in the accepted configuration", name), http.StatusNotFound)
		return
	}
	set, err := SettingsOf(l)
	if err != nil {
		http.Error(w, fmt.Sprintf("listener %q: %v", name, err), http.StatusInternalServerError)
		return
	}
	var filter *regexp.Regexp
	if f := q.Get("filter"); f != "" {
		if filter, err = regexp.Compile(f); err != nil {
			http.Error(w, "filter: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	opts := stats.FamilyOptions{UsedOnly: q.Has("usedonly"), Select: func(stat, prom string) bool {
		if anyMatches(set.Include, prom) {
			return true // include wins over the profiles and exclude
		}
		return (filter == nil || filter.MatchString(stat)) && !anyMatches(set.Exclude, prom)
	}}
	fams := s.Store.FamiliesWith(opts)
	if len(set.Applications) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r))
		defer cancel()
		fams = Merge(fams, s.scrapeAll(ctx, set.Applications, log), log)
	}
	w.Header().Set("Content-Type", stats.TextContentType)
	if err := stats.WriteText(w, fams); err != nil {
		log.Debug("writing MeshMetric metrics", "error", err)
	}
}

// scrapeTimeout is the scraper's timeout (minus a margin) or the default.
func scrapeTimeout(r *http.Request) time.Duration {
	if v, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && v > 0 {
		return min(DefaultScrapeTimeout, time.Duration(v*float64(time.Second))*9/10)
	}
	return DefaultScrapeTimeout
}

// scrapeAll scrapes the applications concurrently; the families of each
// are in the order of apps (nil for an application that failed).
func (s *Server) scrapeAll(ctx context.Context, apps []Application, log *slog.Logger) [][]*dto.MetricFamily {
	out := make([][]*dto.MetricFamily, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fams, err := s.scrape(ctx, a)
			if err != nil {
				log.Warn("MeshMetric: scraping an application failed; its metrics are left out", "application", a.Name, "url", a.URL(), "error", err)
				return
			}
			out[i] = fams
		}()
	}
	wg.Wait()
	return out
}

// scrape reads one application's metrics in the Prometheus text format.
func (s *Server) scrape(ctx context.Context, a Application) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	c := s.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxAppBody))
	if err != nil {
		return nil, fmt.Errorf("not the Prometheus text format: %w", err)
	}
	fams := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		fams = append(fams, f)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return fams, nil
}

var defaultClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}

// Merge adds the applications' families to the sidecar's, as kuma-dp
// merges them: unchanged, except that a family whose name is already
// taken (by the sidecar or an earlier application) is left out, with a
// warning, since one name may appear only once in an exposition. The
// result is sorted by name.
func Merge(sidecar []*dto.MetricFamily, apps [][]*dto.MetricFamily, log *slog.Logger) []*dto.MetricFamily {
	out := slices.Clone(sidecar)
	taken := make(map[string]bool, len(sidecar))
	for _, f := range sidecar {
		taken[f.GetName()] = true
	}
	for i, fams := range apps {
		for _, f := range fams {
			if taken[f.GetName()] {
				log.Warn("MeshMetric: an application's metric family has the name of another; left out", "application", i, "family", f.GetName())
				continue
			}
			taken[f.GetName()] = true
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}
