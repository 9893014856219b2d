package apiserver

import (
	"net/http"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
)

// UseMetrics makes Serve and ServeTLS count and time every request into m
// (trellis_cp_api_requests_total, api_server_http_request_duration_seconds),
// labelled with the route pattern the request matched. Call before Serve.
func (s *Server) UseMetrics(m *cpmetrics.Metrics) { s.metrics = m }

// builtinPatterns are the routes Handler mounts itself, for labelling
// requests (keep in step with Handler); the GUI's prefix is one label.
var builtinPatterns = []string{
	"GET /{$}", "GET /_resources", "GET /ready", "GET /healthy",
	"GET /meshes/{mesh}/{path}", "GET /meshes/{mesh}/{path}/{name}",
	"PUT /meshes/{mesh}/{path}/{name}", "DELETE /meshes/{mesh}/{path}/{name}",
	"GET /{path}", "GET /{path}/{name}", "PUT /{path}/{name}", "DELETE /{path}/{name}",
	"POST /tokens/user", "GET /gui", "GET /gui/",
}

// instrumented is the API handler Serve and ServeTLS run: Handler, timed
// into the metrics when UseMetrics set them.
func (s *Server) instrumented() http.Handler {
	h := s.Handler()
	if s.metrics == nil {
		return h
	}
	routes := http.NewServeMux()
	for _, p := range builtinPatterns {
		addLabel(routes, p)
	}
	for _, r := range s.extras {
		addLabel(routes, r.pattern)
	}
	return s.metrics.InstrumentAPI(h, func(r *http.Request) string {
		_, pattern := routes.Handler(r)
		return pattern
	})
}

// addLabel adds a pattern to the labelling mux; one that conflicts with
// another (Handler's own mux has the final say) is left out, so labels
// never stop the API from starting.
func addLabel(routes *http.ServeMux, pattern string) {
	defer func() { _ = recover() }()
	routes.Handle(pattern, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}
