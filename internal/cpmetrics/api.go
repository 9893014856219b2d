package cpmetrics

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// unmatched is the handler label of requests no route matched.
const unmatched = "unmatched"

type routeKey struct{}

// routeHolder carries the matched route pattern from the inner mux back to
// the outer middleware (the layers between may copy the request).
type routeHolder struct{ pattern string }

// InstrumentAPI wraps the whole API handler: it counts every request and
// times it by method, route pattern and status code. The pattern is the
// one RecordRoute saw the mux match, never the raw path (which would make
// one series per resource name).
func (m *Metrics) InstrumentAPI(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder := &routeHolder{}
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			pattern := holder.pattern
			if pattern == "" {
				pattern = unmatched
			}
			m.ObserveAPI(r.Method, pattern, sw.status, time.Since(start))
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, holder)))
	})
}

// RecordRoute wraps the API's ServeMux and notes the pattern it matched
// for InstrumentAPI.
func RecordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			h.pattern = r.Pattern
		}
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush passes streaming flushes through.
func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func codeString(code int) string { return strconv.Itoa(code) }
