package gui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// svgNamespace is the one URL the assets may hold: it names the SVG XML
// namespace and is never fetched.
const svgNamespace = "http://www.w3.org/2000/svg"

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestEveryAssetIsServed serves each embedded file under /gui/ with the
// content type of its extension, and checks nothing is left out.
func TestEveryAssetIsServed(t *testing.T) {
	h := MustNew()
	var files []string
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(p, "assets/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Assets(); strings.Join(got, ",") != strings.Join(files, ",") {
		t.Fatalf("served assets %v, embedded files %v", got, files)
	}
	for _, want := range []string{"index.html", "app.js", "app.css", "favicon.svg"} {
		if !strings.Contains(","+strings.Join(files, ",")+",", ","+want+",") {
			t.Errorf("asset %s is not embedded", want)
		}
	}
	types := map[string]string{".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
		".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, name := range files {
		resp := get(t, h, Prefix+name)
		body, _ := io.ReadAll(resp.Body)
		want := types[name[strings.LastIndex(name, "."):]]
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want {
			t.Errorf("GET %s%s = %d %q, want 200 %q", Prefix, name, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		if len(body) == 0 {
			t.Errorf("GET %s%s: empty body", Prefix, name)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s%s: no X-Content-Type-Options: nosniff", Prefix, name)
		}
	}
}

// TestIndexAndRedirect: /gui redirects to /gui/, which serves index.html
// with a same-origin content security policy; unknown files are 404s.
func TestIndexAndRedirect(t *testing.T) {
	h := MustNew()
	resp := get(t, h, "/gui")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/gui/" {
		t.Errorf("GET /gui = %d Location %q, want 301 to /gui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(t, h, "/gui/")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<script type="module" src="app.js">`) {
		t.Errorf("GET /gui/ = %d, body:\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /gui/: Content-Security-Policy %q, want default-src 'self'", csp)
	}
	if resp := get(t, h, "/gui/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /gui/nope.js = %d, want 404", resp.StatusCode)
	}
	if resp := get(t, h, "/gui/", "If-None-Match", get(t, h, "/gui/").Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET /gui/ with its ETag = %d, want 304", resp.StatusCode)
	}
	req := httptest.NewRequest(http.MethodPost, "/gui/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /gui/ = %d, want 405", rec.Code)
	}
}

// TestNoRemoteURLs: the GUI fetches nothing from the internet, so no
// asset names an http:// or https:// URL (bar the SVG namespace).
func TestNoRemoteURLs(t *testing.T) {
	url := regexp.MustCompile(`(?i)https?://[^\s"'<>)` + "`" + `]*`)
	h := MustNew()
	for _, name := range h.Assets() {
		for _, m := range url.FindAllString(string(h.assets[name].body), -1) {
			if m != svgNamespace {
				t.Errorf("%s references %s: the GUI must fetch nothing from elsewhere", name, m)
			}
		}
		if strings.Contains(string(h.assets[name].body), "//cdn") || strings.Contains(string(h.assets[name].body), "@import") {
			t.Errorf("%s looks like it loads a remote or imported resource", name)
		}
	}
}

// TestModuleImportsResolve: every relative import of a module, and every
// file index.html links, is an embedded asset.
func TestModuleImportsResolve(t *testing.T) {
	h := MustNew()
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s+'\./([^']+)'`)
	links := regexp.MustCompile(`(?:src|href)="([a-z][^"#:]*)"`)
	for _, name := range h.Assets() {
		body := string(h.assets[name].body)
		var refs [][]string
		switch {
		case strings.HasSuffix(name, ".js"):
			refs = imports.FindAllStringSubmatch(body, -1)
		case name == "index.html":
			refs = links.FindAllStringSubmatch(body, -1)
		}
		for _, m := range refs {
			if _, ok := h.assets[m[1]]; !ok {
				t.Errorf("%s refers to %s, which is not embedded", name, m[1])
			}
		}
	}
}
