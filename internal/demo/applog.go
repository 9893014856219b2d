package demo

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// syncWriter serializes writes from concurrent requests to one log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Close closes the underlying log.
func (s *syncWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Close()
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// accessLog writes one line per request served by the app called name.
func accessLog(name string, w io.Writer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: rw}
		h.ServeHTTP(rec, r)
		fmt.Fprintf(w, "%s %-10s %s %s %d %s\n", start.UTC().Format(time.RFC3339Nano), name, r.Method,
			r.URL.RequestURI(), rec.status, time.Since(start).Round(time.Microsecond))
	})
}
