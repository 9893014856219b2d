package apiserver_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestGUIMount: the API serves the GUI at /gui and /gui/ to any client,
// without a token (its files hold no data), while the API next to it
// still asks remote clients for one; GET / says where the GUI is.
func TestGUIMount(t *testing.T) {
	e := newAuthnEnv(t, true)
	rec, _ := e.call(remote, http.MethodGet, "/gui", "", "")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/gui/" {
		t.Errorf("GET /gui = %d Location %q, want 301 to /gui/", rec.Code, rec.Header().Get("Location"))
	}
	for path, ctype := range map[string]string{"/gui/": "text/html; charset=utf-8", "/gui/app.js": "text/javascript; charset=utf-8", "/gui/app.css": "text/css; charset=utf-8"} {
		rec, _ := e.call(remote, http.MethodGet, path, "", "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ctype {
			t.Errorf("GET %s from a remote client = %d %q, want 200 %q", path, rec.Code, rec.Header().Get("Content-Type"), ctype)
		}
	}
	if rec, _ := e.call(remote, http.MethodGet, "/meshes", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /meshes from a remote client without a token = %d, want 401", rec.Code)
	}
	rec, body := e.call(local4, http.MethodGet, "/", "", "")
	if gui, _ := body["gui"].(string); rec.Code != http.StatusOK || !strings.Contains(gui, "/gui/") {
		t.Errorf("GET / = %d, gui %q, want it to name /gui/", rec.Code, body["gui"])
	}
}
