package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Kuma's list defaults.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Labels the control plane puts on the policies it stores, as Kuma does.
const (
	LabelMesh   = "kuma.io/mesh"
	LabelOrigin = "kuma.io/origin"
	OriginZone  = "zone"
)

type listResponse struct {
	Total int               `json:"total"`
	Items []json.RawMessage `json:"items"`
	Next  *string           `json:"next"`
}

type putResponse struct {
	Warnings []string `json:"warnings,omitempty"`
}

// descriptor finds the kind served at path, answering 404 (unknown) or
// 400 (known to Kuma, not supported yet) itself when there is none.
func (s *Server) descriptor(w http.ResponseWriter, path string) (*resource.Descriptor, bool) {
	if d, ok := s.reg.ByPath(path); ok {
		return d, true
	}
	if kind, ok := s.reg.Unsupported(path); ok {
		writeError(w, http.StatusBadRequest, "Resource type not supported", kind+" is not supported yet by Trellis")
		return nil, false
	}
	writeError(w, http.StatusNotFound, "Not found", fmt.Sprintf("unknown resource type %q: GET /_resources lists the supported ones", path))
	return nil, false
}

// meshScoped finds a mesh-scoped kind for /meshes/{mesh}/{path}/... routes.
func (s *Server) meshScoped(w http.ResponseWriter, r *http.Request) (*resource.Descriptor, string, bool) {
	d, ok := s.descriptor(w, r.PathValue("path"))
	if !ok {
		return nil, "", false
	}
	if d.Scope != resource.ScopeMesh {
		writeError(w, http.StatusBadRequest, "Invalid request", fmt.Sprintf("%s is not mesh-scoped: use /%s", d.Kind, d.Path))
		return nil, "", false
	}
	return d, r.PathValue("mesh"), true
}

// global finds a kind for /{path}/{name} routes, which serve global kinds.
func (s *Server) global(w http.ResponseWriter, r *http.Request) (*resource.Descriptor, bool) {
	d, ok := s.descriptor(w, r.PathValue("path"))
	if !ok {
		return nil, false
	}
	if d.Scope != resource.ScopeGlobal {
		writeError(w, http.StatusBadRequest, "Invalid request", fmt.Sprintf("%s is mesh-scoped: use /meshes/{mesh}/%s/{name}", d.Kind, d.Path))
		return nil, false
	}
	return d, true
}

func (s *Server) listInMesh(w http.ResponseWriter, r *http.Request) {
	if d, mesh, ok := s.meshScoped(w, r); ok {
		s.list(w, r, d, mesh)
	}
}

func (s *Server) listAll(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.descriptor(w, r.PathValue("path")); ok {
		s.list(w, r, d, "")
	}
}

func (s *Server) getInMesh(w http.ResponseWriter, r *http.Request) {
	if d, mesh, ok := s.meshScoped(w, r); ok {
		s.get(w, r, d, mesh, r.PathValue("name"))
	}
}

func (s *Server) getGlobal(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.global(w, r); ok {
		s.get(w, r, d, "", r.PathValue("name"))
	}
}

func (s *Server) putInMesh(w http.ResponseWriter, r *http.Request) {
	if d, mesh, ok := s.meshScoped(w, r); ok {
		s.put(w, r, d, mesh, r.PathValue("name"))
	}
}

func (s *Server) putGlobal(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.global(w, r); ok {
		s.put(w, r, d, "", r.PathValue("name"))
	}
}

func (s *Server) deleteInMesh(w http.ResponseWriter, r *http.Request) {
	if d, mesh, ok := s.meshScoped(w, r); ok {
		s.delete(w, r, d, mesh, r.PathValue("name"))
	}
}

func (s *Server) deleteGlobal(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.global(w, r); ok {
		s.delete(w, r, d, "", r.PathValue("name"))
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, d *resource.Descriptor, mesh, name string) {
	res, err := s.mgr.Get(r.Context(), d, mesh, name)
	if err != nil {
		writeErr(w, err)
		return
	}
	body, err := resource.Encode(res)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeBody(w, http.StatusOK, body)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, d *resource.Descriptor, mesh string) {
	opts, verr := listOptions(r.URL.Query())
	if verr != nil {
		writeError(w, http.StatusBadRequest, "Invalid request", "Invalid query parameters", verr.Violations...)
		return
	}
	opts.Mesh = mesh
	items, total, err := s.mgr.List(r.Context(), d, opts)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := listResponse{Total: total, Items: make([]json.RawMessage, 0, len(items))}
	for _, res := range items {
		body, err := resource.Encode(res)
		if err != nil {
			writeErr(w, err)
			return
		}
		resp.Items = append(resp.Items, body)
	}
	resp.Next = NextLink(r, opts.Offset+len(items), opts.Limit, total)
	writeJSON(w, http.StatusOK, resp)
}

// listOptions reads size, offset, name and filter[labels.KEY]=VALUE.
func listOptions(q url.Values) (manager.ListOptions, *validate.Error) {
	var errs validate.Errors
	o := manager.ListOptions{Limit: defaultPageSize}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			errs.Addf(validate.NewPath("size"), "must be an integer between 1 and %d", maxPageSize)
		}
		o.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs.Add(validate.NewPath("offset"), "must be a non-negative integer")
		}
		o.Offset = n
	}
	o.NameContains = q.Get("name")
	for k, vs := range q {
		key, ok := strings.CutPrefix(k, "filter[labels.")
		if !ok {
			continue
		}
		key, ok = strings.CutSuffix(key, "]")
		if !ok || key == "" || len(vs) == 0 {
			errs.Add(validate.NewPath(k), "must be written filter[labels.KEY]=VALUE")
			continue
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[key] = vs[0]
	}
	if !errs.Empty() {
		var ve *validate.Error
		errors.As(errs.Err(), &ve)
		return o, ve
	}
	return o, nil
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, d *resource.Descriptor, mesh, name string) {
	if d.ReadOnly {
		writeError(w, http.StatusMethodNotAllowed, "Read-only resource", d.Kind+" cannot be written through the API")
		return
	}
	if s.refuseForeignWrite(w, d) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "Request body too large", fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "Invalid request", "reading the body: "+err.Error())
		return
	}
	res, err := resource.DecodeForPath(d, body, mesh, name)
	if err != nil {
		writeErr(w, err)
		return
	}
	if d.IsPolicy() {
		labels := res.CloneLabels()
		setDefault(labels, LabelMesh, mesh)
		setDefault(labels, LabelOrigin, s.origin())
		res.Meta.Labels = labels
	}
	created, err := s.mgr.Apply(r.Context(), res)
	if err != nil {
		writeErr(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, putResponse{Warnings: resource.Warnings(res)})
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, d *resource.Descriptor, mesh, name string) {
	if d.ReadOnly {
		writeError(w, http.StatusMethodNotAllowed, "Read-only resource", d.Kind+" cannot be deleted through the API")
		return
	}
	if s.refuseForeignWrite(w, d) {
		return
	}
	if err := s.mgr.Delete(r.Context(), d, mesh, name); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

type descriptorJSON struct {
	Name                string      `json:"name"`
	Scope               string      `json:"scope"`
	ReadOnly            bool        `json:"readOnly"`
	Path                string      `json:"path"`
	SingularDisplayName string      `json:"singularDisplayName"`
	PluralDisplayName   string      `json:"pluralDisplayName"`
	IncludeInFederation bool        `json:"includeInFederation"`
	Policy              *policyJSON `json:"policy,omitempty"`
}

type policyJSON struct {
	IsTargetRef      bool `json:"isTargetRef"`
	HasToTargetRef   bool `json:"hasToTargetRef"`
	HasFromTargetRef bool `json:"hasFromTargetRef"`
	HasRules         bool `json:"hasRules"`
}

func (s *Server) resources(w http.ResponseWriter, _ *http.Request) {
	var out struct {
		Resources []descriptorJSON `json:"resources"`
	}
	for _, d := range s.reg.All() {
		dj := descriptorJSON{
			Name: d.Kind, Scope: string(d.Scope), ReadOnly: d.ReadOnly, Path: d.Path,
			SingularDisplayName: d.DisplayName(), PluralDisplayName: plural(d.DisplayName()),
			IncludeInFederation: d.Kind != "Zone",
		}
		if d.Policy != nil {
			dj.Policy = &policyJSON{IsTargetRef: true, HasToTargetRef: d.Policy.HasTo, HasFromTargetRef: d.Policy.HasFrom, HasRules: d.Policy.HasRules}
		}
		out.Resources = append(out.Resources, dj)
	}
	writeJSON(w, http.StatusOK, out)
}

func plural(s string) string {
	switch {
	case strings.HasSuffix(s, "y"):
		return strings.TrimSuffix(s, "y") + "ies"
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "sh"):
		return s + "es"
	default:
		return s + "s"
	}
}
