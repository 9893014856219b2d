package demo_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/demo"
)

// get fetches url with an optional Accept header.
func get(t *testing.T, url, accept string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestBackendAnswers(t *testing.T) {
	srv := httptest.NewServer(demo.Backend("backend-3"))
	defer srv.Close()

	status, hdr, body := get(t, srv.URL+"/", "")
	if status != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET / = %d %q, want 200 application/json", status, hdr.Get("Content-Type"))
	}
	var a demo.BackendAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET / body %q: %v", body, err)
	}
	if a.Service != "backend" || a.Instance != "backend-3" || a.Time == "" || a.Hostname == "" {
		t.Errorf("GET / = %+v, want service backend, instance backend-3, a time and a hostname", a)
	}

	if status, _, body := get(t, srv.URL+"/status/503", ""); status != 503 || !strings.Contains(body, `"status":503`) {
		t.Errorf("GET /status/503 = %d %s, want 503 with status 503 in the JSON", status, body)
	}
	if status, _, body := get(t, srv.URL+"/slow?delay=10ms", ""); status != 200 || !strings.Contains(body, `"delay":"10ms"`) {
		t.Errorf("GET /slow?delay=10ms = %d %s, want 200 with the delay in the JSON", status, body)
	}
	for _, path := range []string{"/slow?delay=soon", "/slow?delay=2h", "/status/abc", "/status/42"} {
		if status, _, body := get(t, srv.URL+path, ""); status != 400 {
			t.Errorf("GET %s = %d %s, want 400", path, status, body)
		}
	}
}

func TestFrontendRendersTheBackendsAnswer(t *testing.T) {
	backend := httptest.NewServer(demo.Backend("backend-7"))
	defer backend.Close()
	frontend := httptest.NewServer(demo.Frontend(backend.URL, nil))
	defer frontend.Close()

	status, hdr, body := get(t, frontend.URL+"/", "")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET / = %d %q, want 200 text/plain; body:\n%s", status, hdr.Get("Content-Type"), body)
	}
	rest, ok := strings.CutPrefix(body, "frontend → backend: ")
	if !ok {
		t.Fatalf("body %q does not start with %q", body, "frontend → backend: ")
	}
	var a demo.BackendAnswer
	if err := json.Unmarshal([]byte(rest), &a); err != nil || a.Instance != "backend-7" || a.Service != "backend" {
		t.Errorf("the backend's JSON in %q = %+v (%v), want instance backend-7", body, a, err)
	}

	// The path goes through to the backend, and its errors show.
	status, _, body = get(t, frontend.URL+"/status/503", "")
	if status != 503 || !strings.Contains(body, "the backend answered 503 Service Unavailable") || !strings.Contains(body, `"status":503`) {
		t.Errorf("GET /status/503 = %d, body:\n%s\nwant 503 naming the backend's answer", status, body)
	}

	// Browsers get HTML, with the JSON escaped.
	status, hdr, body = get(t, frontend.URL+"/", "text/html,application/xhtml+xml")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "frontend → backend") || !strings.Contains(body, "&#34;instance&#34;:&#34;backend-7&#34;") {
		t.Errorf("GET / as a browser = %d %q, body:\n%s", status, hdr.Get("Content-Type"), body)
	}
}

func TestFrontendShowsABackendThatIsDown(t *testing.T) {
	backend := httptest.NewServer(demo.Backend("backend-1"))
	backendURL := backend.URL
	backend.Close()
	frontend := httptest.NewServer(demo.Frontend(backendURL, nil))
	defer frontend.Close()

	status, _, body := get(t, frontend.URL+"/", "")
	if status != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", status)
	}
	for _, want := range []string{"frontend → backend: error: the backend could not be reached", "connection refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("body does not contain %q:\n%s", want, body)
		}
	}
}
