// Package gui serves Trellis's web GUI: hand-written HTML, CSS and
// JavaScript modules embedded in the binary, with nothing fetched from
// elsewhere. The GUI is a single page that reads the REST API of the
// control plane it is served by (same origin) and routes on hash URLs
// (#/meshes/default/dataplanes/dp-1), so deep links need no server
// routes.
//
// The API server mounts Handler at /gui and /gui/ (Prefix): /gui
// redirects to /gui/, /gui/ serves index.html and /gui/NAME serves the
// asset NAME.
//
// The assets (assets/): index.html and app.css; app.js (shell and hash
// router); api.js (the endpoints it reads); model.js (status, services and
// tags derived from dataplane overviews); dom.js (element builder, tables
// that turn into cards below 700px); graph.js (the service map's
// deterministic layered SVG layout); yaml.js; one view-*.js per page.
// The GUI reads /_resources (the policy kinds), /meshes, the dataplane
// overviews (/meshes/{mesh}/dataplanes+insights), the inspect endpoints
// (_rules, _config, _resources/dataplanes), the policy lists, and, when
// the control plane serves them, /global-insight, /mesh-insights and
// /meshes/{mesh}/_service-map; without the insights it computes the same
// figures from the overviews. On a global control plane (GET / says "mode")
// view-zones.js reads /zones+insights, /zoneingresses+insights and the
// dataplane overviews filtered by the kuma.io/zone label. test/e2e/gui_test.go drives it in Chromium.
package gui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// Prefix is the URL path the GUI is served under.
const Prefix = "/gui/"

//go:embed assets
var embedded embed.FS

// contentTypes maps the asset extensions to what they are served as;
// an asset with another extension is a build mistake (see Assets).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp keeps the page to its own origin: scripts, styles, images and API
// calls all come from the control plane serving it.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the GUI.
type Handler struct {
	assets map[string]asset
	// modTime is when the process started: embedded files have none.
	modTime time.Time
}

// New loads the embedded assets. It fails when an asset has an extension
// without a known content type.
func New() (*Handler, error) {
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, fmt.Errorf("gui: opening the embedded assets: %w", err)
	}
	h := &Handler{assets: map[string]asset{}, modTime: time.Now()}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("gui: asset %s: no content type for %q", name, path.Ext(name))
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return fmt.Errorf("gui: reading asset %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		h.assets[name] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := h.assets["index.html"]; !ok {
		return nil, fmt.Errorf("gui: the embedded assets have no index.html")
	}
	return h, nil
}

// MustNew is New for callers that embed known-good assets: it panics on
// the errors New reports, which only a broken build can cause.
func MustNew() *Handler {
	h, err := New()
	if err != nil {
		panic(err)
	}
	return h
}

// Assets lists the served asset names (relative to Prefix), sorted.
func (h *Handler) Assets() []string {
	names := make([]string, 0, len(h.assets))
	for n := range h.assets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ServeHTTP serves GET and HEAD requests for /gui, /gui/ and /gui/NAME.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the GUI is read with GET", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.Error(w, fmt.Sprintf("the GUI has no file %q", name), http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// Revalidate every time: a new binary serves new assets under the
	// same names.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if a.contentType == contentTypes[".html"] {
		hdr.Set("Content-Security-Policy", csp)
		hdr.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, name, h.modTime, bytes.NewReader(a.body))
}
