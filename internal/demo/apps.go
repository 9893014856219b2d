package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// BackendService is the kuma.io/service of the backend instances.
const BackendService = "backend"

// FrontendService is the kuma.io/service of the frontend.
const FrontendService = "frontend"

// BackendAnswer is the JSON body every backend response carries.
type BackendAnswer struct {
	// Service is always "backend".
	Service string `json:"service"`
	// Instance names the backend instance that answered (backend-1..N),
	// which makes load balancing visible.
	Instance string `json:"instance"`
	// Hostname is the machine's host name.
	Hostname string `json:"hostname"`
	// Time is when the answer was made (RFC 3339, UTC, milliseconds).
	Time string `json:"time"`
	// Status is set by /status/{code}: the code it answered with.
	Status int `json:"status,omitempty"`
	// Delay is set by /slow: how long it waited before answering.
	Delay string `json:"delay,omitempty"`
}

// maxSlowDelay caps the /slow?delay= parameter.
const maxSlowDelay = time.Minute

// defaultSlowDelay is /slow's delay when none is asked for.
const defaultSlowDelay = 2 * time.Second

// Backend returns the backend demo app, named instance. It answers every
// GET with a BackendAnswer, plus:
//   - /slow?delay=2s waits (default 2 s, at most 1 min) before answering,
//     for timeout policies;
//   - /status/{code} answers with that HTTP status (200..599), for retry
//     and circuit-breaker policies.
func Backend(instance string) http.Handler {
	host, _ := os.Hostname()
	answer := func(w http.ResponseWriter, status int, a BackendAnswer) {
		a.Service, a.Instance, a.Hostname = BackendService, instance, host
		a.Time = time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend-Instance", instance)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(a)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, BackendAnswer{})
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		delay := defaultSlowDelay
		if s := r.URL.Query().Get("delay"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > maxSlowDelay {
				http.Error(w, fmt.Sprintf("delay %q: want a duration between 0s and %s, e.g. 2s", s, maxSlowDelay), http.StatusBadRequest)
				return
			}
			delay = d
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		answer(w, http.StatusOK, BackendAnswer{Delay: delay.String()})
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, fmt.Sprintf("status %q: want a number between 200 and 599", r.PathValue("code")), http.StatusBadRequest)
			return
		}
		answer(w, code, BackendAnswer{Status: code})
	})
	return mux
}

// maxBackendBody caps how much of the backend's answer the frontend shows.
const maxBackendBody = 64 << 10

// frontendPage renders the frontend's answer for browsers.
var frontendPage = template.Must(template.New("frontend").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Trellis demo: frontend</title></head>
<body style="font-family: sans-serif; margin: 2em">
<h1>frontend → backend</h1>
<p>{{if .Summary}}{{.Summary}}{{else}}the backend answered:{{end}}</p>
<pre style="background: #f4f4f4; padding: 1em">{{.Body}}</pre>
<p>The frontend called <code>{{.URL}}</code>, its sidecar's outbound listener for the backend service.
Reload to see the instances take turns.</p>
</body></html>
`))

// Frontend returns the frontend demo app. Each request is passed on (same
// path and query) to backendURL, which in the demo is the frontend
// sidecar's outbound listener for the backend service, and the answer is
// rendered as "frontend → backend: <body>": plain text, or HTML for
// clients that accept it. A failed call is shown, not hidden: the
// frontend answers with the backend's error status, or 502 when the
// backend could not be reached. client nil means a client with a one-minute
// timeout that never uses an HTTP proxy.
func Frontend(backendURL string, client *http.Client) http.Handler {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Minute}
	}
	base := strings.TrimRight(backendURL, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/favicon.ico", http.NotFound)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		target := base + r.URL.RequestURI()
		status, summary, body := callBackend(r.Context(), client, target)
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_ = frontendPage.Execute(w, struct{ Summary, Body, URL string }{summary, body, target})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		if summary != "" {
			fmt.Fprintf(w, "frontend → backend: %s\n%s\n", summary, body)
			return
		}
		fmt.Fprintf(w, "frontend → backend: %s\n", body)
	})
	return mux
}

// callBackend GETs target and returns the status the frontend answers
// with, a summary when something went wrong, and the backend's body (or
// the error).
func callBackend(ctx context.Context, client *http.Client, target string) (int, string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return http.StatusInternalServerError, "error", err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return http.StatusBadGateway, "error: the backend could not be reached", err.Error()
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBackendBody))
	body := strings.TrimRight(string(raw), "\n")
	if err != nil {
		return http.StatusBadGateway, "error reading the backend's answer", fmt.Sprintf("%s\n(%v)", body, err)
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, "error: the backend answered " + resp.Status, body
	}
	return http.StatusOK, "", body
}
