package cpmetrics

import (
	"net/http"
	"strconv"
	"time"
)

// unmatched is the handler label of requests no route matched.
const unmatched = "unmatched"

// InstrumentAPI wraps the whole API handler: it counts every request and
// times it by method, route pattern and status code. pattern returns the
// route pattern a request matches ("" for none), never the raw path (which
// would make one series per resource name).
func (m *Metrics) InstrumentAPI(next http.Handler, pattern func(*http.Request) string) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			p := pattern(r)
			if p == "" {
				p = unmatched
			}
			m.ObserveAPI(r.Method, p, sw.status, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
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
