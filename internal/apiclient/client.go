// Package apiclient is a small HTTP client for Trellis's REST API (Kuma
// 2.14's Universal API): get, list, put and delete resources, and read the
// control plane's index. Resources travel as generic JSON, so callers need
// no typed specs; the CLI, tests and the end-to-end suite share it.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds each request when New is given no HTTP client.
const DefaultTimeout = 30 * time.Second

// maxErrorBody is how much of a non-JSON error body is kept in APIError.Detail.
const maxErrorBody = 512

// Object is a resource as generic JSON: type, name, mesh and the rest.
type Object = map[string]any

// Client talks to one control plane's API server. It is safe for
// concurrent use.
type Client struct {
	base   string
	http   *http.Client
	header http.Header
}

// New returns a client for the API at baseURL (e.g. "http://127.0.0.1:5681",
// optionally with a path prefix). httpClient may be nil for a default client
// with DefaultTimeout.
func New(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient, header: http.Header{}}
}

// BaseURL returns the API address the client was built with, without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base }

// SetHeader adds a header sent with every request (e.g. Authorization).
// Call it before sharing the client between goroutines.
func (c *Client) SetHeader(key, value string) { c.header.Set(key, value) }

// ResourcePath returns the REST path of a resource or collection: with a
// mesh, /meshes/{mesh}/{plural}[/{name}]; without, /{plural}[/{name}]
// (global kinds, and lists across all meshes).
func ResourcePath(plural, mesh, name string) string {
	var b strings.Builder
	if mesh != "" {
		b.WriteString("/meshes/")
		b.WriteString(url.PathEscape(mesh))
	}
	b.WriteByte('/')
	b.WriteString(url.PathEscape(plural))
	if name != "" {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(name))
	}
	return b.String()
}

// Do sends one request to path (relative to the base URL, starting with
// "/") with an optional query and JSON body, and decodes a 2xx JSON answer
// into out (when out is non-nil; a *json.RawMessage or *[]byte gets the raw
// body). It returns the status code. Non-2xx answers are *APIError; requests
// without an answer are *TransportError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) (int, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		js, err := encodeBody(body)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encoding the body: %w", method, target, err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, target, err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &TransportError{Method: method, URL: target, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, &TransportError{Method: method, URL: target, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, decodeError(method, target, resp.StatusCode, data)
	}
	if err := decodeInto(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", method, target, err)
	}
	return resp.StatusCode, nil
}

func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	default:
		return json.Marshal(body)
	}
}

func decodeInto(data []byte, out any) error {
	switch o := out.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		*o = append((*o)[:0], bytes.TrimSpace(data)...)
		return nil
	case *[]byte:
		*o = append((*o)[:0], data...)
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(out)
}

// unwrapURLError drops *url.Error's "Get "…": " prefix, which TransportError
// already renders.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(method, target string, status int, data []byte) error {
	apiErr := &APIError{}
	if err := json.Unmarshal(data, apiErr); err != nil || (apiErr.Title == "" && apiErr.Detail == "") {
		apiErr = &APIError{Title: http.StatusText(status), Detail: strings.TrimSpace(truncate(string(data), maxErrorBody))}
	}
	apiErr.Method, apiErr.URL, apiErr.Status = method, target, status
	return apiErr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Index is what GET / reports about the control plane.
type Index struct {
	Hostname    string `json:"hostname"`
	Tagline     string `json:"tagline"`
	Product     string `json:"product"`
	Version     string `json:"version"`
	BasedOnKuma string `json:"basedOnKuma"`
	InstanceID  string `json:"instanceId"`
	ClusterID   string `json:"clusterId"`
	GUI         string `json:"gui"`
}

// Index fetches GET /, which any Kuma-compatible control plane answers.
func (c *Client) Index(ctx context.Context) (*Index, error) {
	var idx Index
	if _, err := c.Do(ctx, http.MethodGet, "/", nil, nil, &idx); err != nil {
		return nil, err
	}
	return &idx, nil
}

// ResourceType is one entry of GET /_resources.
type ResourceType struct {
	Name                string `json:"name"`
	Scope               string `json:"scope"`
	ReadOnly            bool   `json:"readOnly"`
	Path                string `json:"path"`
	SingularDisplayName string `json:"singularDisplayName"`
	PluralDisplayName   string `json:"pluralDisplayName"`
}

// ResourceTypes fetches GET /_resources: the kinds the control plane serves.
func (c *Client) ResourceTypes(ctx context.Context) ([]ResourceType, error) {
	var out struct {
		Resources []ResourceType `json:"resources"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/_resources", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Resources, nil
}

// Get fetches one resource: plural is the kind's REST path segment
// ("meshtimeouts", "meshes"), mesh is empty for global kinds.
func (c *Client) Get(ctx context.Context, plural, mesh, name string) (json.RawMessage, error) {
	if name == "" {
		return nil, errors.New("apiclient: Get needs a resource name")
	}
	var raw json.RawMessage
	if _, err := c.Do(ctx, http.MethodGet, ResourcePath(plural, mesh, name), nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// GetObject fetches one resource and decodes it into a generic object
// (numbers as json.Number).
func (c *Client) GetObject(ctx context.Context, plural, mesh, name string) (Object, error) {
	raw, err := c.Get(ctx, plural, mesh, name)
	if err != nil {
		return nil, err
	}
	var obj Object
	if err := decodeInto(raw, &obj); err != nil {
		return nil, fmt.Errorf("decoding %s %q: %w", plural, name, err)
	}
	return obj, nil
}

// Put creates or replaces a resource. body is the resource as JSON bytes or
// any value that marshals to it (an Object, a struct). It reports whether
// the resource was created (201) rather than updated (200), and the
// warnings the control plane returned.
func (c *Client) Put(ctx context.Context, plural, mesh, name string, body any) (created bool, warnings []string, err error) {
	if name == "" {
		return false, nil, errors.New("apiclient: Put needs a resource name")
	}
	var out struct {
		Warnings []string `json:"warnings"`
	}
	status, err := c.Do(ctx, http.MethodPut, ResourcePath(plural, mesh, name), nil, body, &out)
	if err != nil {
		return false, nil, err
	}
	return status == http.StatusCreated, out.Warnings, nil
}

// Delete removes a resource.
func (c *Client) Delete(ctx context.Context, plural, mesh, name string) error {
	if name == "" {
		return errors.New("apiclient: Delete needs a resource name")
	}
	_, err := c.Do(ctx, http.MethodDelete, ResourcePath(plural, mesh, name), nil, nil, nil)
	return err
}

// ListOptions select and page a list. Zero values mean the server's
// defaults (first page of 100).
type ListOptions struct {
	// Size is the page size (1..1000); 0 leaves it to the server.
	Size int
	// Offset is how many items to skip.
	Offset int
	// Name keeps resources whose name contains it.
	Name string
	// Labels keeps resources carrying every one of these labels.
	Labels map[string]string
	// Extra are further query parameters some lists take, e.g. the
	// dataplane overviews' tag=KEY:VALUE and gateway.
	Extra url.Values
}

// Query renders the options as the API's query parameters.
func (o ListOptions) Query() url.Values {
	q := url.Values{}
	if o.Size > 0 {
		q.Set("size", strconv.Itoa(o.Size))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	for k, v := range o.Labels {
		q.Set("filter[labels."+k+"]", v)
	}
	for k, vs := range o.Extra {
		q[k] = append(q[k], vs...)
	}
	return q
}

// Page is one page of a list, as the API returns it.
type Page struct {
	// Total counts every matching resource, not just this page's.
	Total int `json:"total"`
	// Items are the resources of this page, as the server encoded them.
	Items []json.RawMessage `json:"items"`
	// Next is the URL of the next page, nil on the last one.
	Next *string `json:"next"`
}

// List fetches one page of a kind's resources in mesh, or across every mesh
// (and for global kinds) when mesh is empty.
func (c *Client) List(ctx context.Context, plural, mesh string, opts ListOptions) (*Page, error) {
	return c.listQuery(ctx, ResourcePath(plural, mesh, ""), opts.Query())
}

func (c *Client) listQuery(ctx context.Context, path string, q url.Values) (*Page, error) {
	var p Page
	if _, err := c.Do(ctx, http.MethodGet, path, q, nil, &p); err != nil {
		return nil, err
	}
	if p.Items == nil {
		p.Items = []json.RawMessage{}
	}
	return &p, nil
}

// maxPages stops ListAll from following a server whose next links loop.
const maxPages = 10000

// ListAll fetches every page, following each page's next link, and returns
// all items in order with the total the last page reported.
func (c *Client) ListAll(ctx context.Context, plural, mesh string, opts ListOptions) ([]json.RawMessage, error) {
	path := ResourcePath(plural, mesh, "")
	q := opts.Query()
	var items []json.RawMessage
	for range maxPages {
		p, err := c.listQuery(ctx, path, q)
		if err != nil {
			return nil, err
		}
		items = append(items, p.Items...)
		if p.Next == nil || *p.Next == "" {
			if items == nil {
				items = []json.RawMessage{}
			}
			return items, nil
		}
		// Follow next by its query only: the host and path in it are the
		// server's view, which may differ behind a proxy or path prefix.
		next, err := url.Parse(*p.Next)
		if err != nil {
			return nil, fmt.Errorf("listing %s: the server's next link %q: %w", plural, *p.Next, err)
		}
		nq := next.Query()
		if nq.Get("offset") == q.Get("offset") {
			return nil, fmt.Errorf("listing %s: the server's next link %q does not advance", plural, *p.Next)
		}
		q = nq
	}
	return nil, fmt.Errorf("listing %s: gave up after %d pages", plural, maxPages)
}
