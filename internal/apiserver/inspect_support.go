package apiserver

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/manager"
)

// This file exports the pieces of the resource API that handlers mounted
// with Server.Handle (the inspect endpoints) share with it, so every
// endpoint answers with the same error JSON and list paging.

// WriteError writes Kuma's std-errors JSON with the given status.
func WriteError(w http.ResponseWriter, status int, title, detail string, params ...validate.Violation) {
	writeError(w, status, title, detail, params...)
}

// WriteErr maps an error from the codec, manager or store to a response:
// validation errors to 400, store.ErrNotFound to 404, conflicts to 409 and
// anything else to a logged 500.
func WriteErr(w http.ResponseWriter, err error) { writeErr(w, err) }

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteBody writes an already-encoded JSON body.
func WriteBody(w http.ResponseWriter, status int, body []byte) { writeBody(w, status, body) }

// ParseListOptions reads a list's query parameters as the resource lists
// do: size (1..1000, default 100), offset, name (contains) and
// filter[labels.KEY]=VALUE. The error lists every bad parameter.
func ParseListOptions(q url.Values) (manager.ListOptions, *validate.Error) {
	return listOptions(q)
}

// NextLink returns the URL of the page after one that ended at offset next
// (the previous offset plus the items returned), or nil when next reaches
// total. It keeps the request's other query parameters.
func NextLink(r *http.Request, next, size, total int) *string {
	if next >= total {
		return nil
	}
	q := r.URL.Query()
	q.Set("offset", strconv.Itoa(next))
	q.Set("size", strconv.Itoa(size))
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	link := u.String()
	return &link
}
