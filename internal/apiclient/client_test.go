package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

// fakeAPI is a tiny stand-in for the API server's wire behaviour, so the
// client's own logic (paths, paging, errors) is tested without the registry.
func fakeAPI(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"hostname":"h","product":"Trellis","version":"1.2.3","instanceId":"i"}`)
	})
	mux.HandleFunc("GET /meshes/{mesh}/meshtimeouts", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RequestURI())
		const total = 5
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if size == 0 {
			size = 2
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var items []string
		for i := off; i < total && i < off+size; i++ {
			items = append(items, fmt.Sprintf(`{"type":"MeshTimeout","mesh":%q,"name":"t%d"}`, r.PathValue("mesh"), i))
		}
		next := "null"
		if off+size < total {
			next = fmt.Sprintf(`"http://elsewhere.example/meshes/x/meshtimeouts?offset=%d&size=%d"`, off+size, size)
		}
		fmt.Fprintf(w, `{"total":%d,"items":[%s],"next":%s}`, total, strings.Join(items, ","), next)
	})
	mux.HandleFunc("PUT /meshes/{mesh}/meshtimeouts/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		if r.PathValue("name") == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"type":"/std-errors","status":400,"title":"Invalid request","detail":"Resource is not valid","invalid_parameters":[{"field":"spec.to[0].default.idleTimeout","reason":"must be a valid duration"},{"field":"name","reason":"cannot be empty"}]}`)
			return
		}
		if r.PathValue("name") == "new" {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{}`)
			return
		}
		_, _ = io.WriteString(w, `{"warnings":["from is deprecated"]}`)
	})
	mux.HandleFunc("GET /meshes/{name}", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		if r.PathValue("name") != "default" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"type":"/std-errors","status":404,"title":"Could not find resource","detail":"not found"}`)
			return
		}
		_, _ = io.WriteString(w, `{"type":"Mesh","name":"default","mtls":{"enabledBackend":"ca-1"},"n":12345678901234567890}`)
	})
	mux.HandleFunc("DELETE /global-secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		_, _ = io.WriteString(w, `{}`)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>upstream down</html>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestIndexGetAndObject(t *testing.T) {
	srv, seen := fakeAPI(t)
	c := apiclient.New(srv.URL+"/", nil)
	ctx := context.Background()

	idx, err := c.Index(ctx)
	if err != nil || idx.Version != "1.2.3" || idx.Product != "Trellis" {
		t.Fatalf("Index = %+v, %v", idx, err)
	}
	obj, err := c.GetObject(ctx, "meshes", "", "default")
	if err != nil {
		t.Fatal(err)
	}
	if obj["name"] != "default" || obj["n"] != json.Number("12345678901234567890") {
		t.Errorf("object = %v (numbers must stay exact)", obj)
	}
	if got := (*seen)[0]; got != "/meshes/default" {
		t.Errorf("path = %q", got)
	}

	_, err = c.Get(ctx, "meshes", "", "nope")
	var apiErr *apiclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || !errors.Is(err, apiclient.ErrNotFound) {
		t.Fatalf("want a 404 *APIError matching ErrNotFound, got %#v", err)
	}
	if apiErr.Error() != "Could not find resource (not found)" {
		t.Errorf("rendered %q", apiErr.Error())
	}
}

func TestPutCreatedUpdatedAndValidationError(t *testing.T) {
	srv, seen := fakeAPI(t)
	c := apiclient.New(srv.URL, nil)
	ctx := context.Background()

	created, warnings, err := c.Put(ctx, "meshtimeouts", "default", "new", apiclient.Object{"type": "MeshTimeout", "name": "new"})
	if err != nil || !created || len(warnings) != 0 {
		t.Fatalf("create: %v %v %v", created, warnings, err)
	}
	created, warnings, err = c.Put(ctx, "meshtimeouts", "default", "old", []byte(`{"type":"MeshTimeout","name":"old"}`))
	if err != nil || created || len(warnings) != 1 || warnings[0] != "from is deprecated" {
		t.Fatalf("update: %v %v %v", created, warnings, err)
	}
	if want := `PUT /meshes/default/meshtimeouts/new {"name":"new","type":"MeshTimeout"}`; (*seen)[0] != want {
		t.Errorf("sent %q, want %q", (*seen)[0], want)
	}

	_, _, err = c.Put(ctx, "meshtimeouts", "default", "bad", apiclient.Object{})
	var apiErr *apiclient.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, apiclient.ErrBadRequest) {
		t.Fatalf("want *APIError, got %v", err)
	}
	want := "Invalid request (Resource is not valid)\n" +
		"* spec.to[0].default.idleTimeout: must be a valid duration\n" +
		"* name: cannot be empty"
	if apiErr.Error() != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", apiErr.Error(), want)
	}
	if len(apiErr.InvalidParameters) != 2 || apiErr.InvalidParameters[0].Field != "spec.to[0].default.idleTimeout" {
		t.Errorf("invalid parameters = %+v", apiErr.InvalidParameters)
	}
}

func TestListPagesAndListAll(t *testing.T) {
	srv, seen := fakeAPI(t)
	c := apiclient.New(srv.URL, nil)
	ctx := context.Background()

	p, err := c.List(ctx, "meshtimeouts", "default", apiclient.ListOptions{Size: 2, Offset: 2, Labels: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 5 || len(p.Items) != 2 || p.Next == nil {
		t.Fatalf("page = %+v", p)
	}
	if got := (*seen)[0]; got != "/meshes/default/meshtimeouts?filter%5Blabels.team%5D=a&offset=2&size=2" {
		t.Errorf("query = %q", got)
	}

	items, err := c.ListAll(ctx, "meshtimeouts", "default", apiclient.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Fatalf("ListAll returned %d items, want 5", len(items))
	}
	var last struct{ Name string }
	_ = json.Unmarshal(items[4], &last)
	if last.Name != "t4" {
		t.Errorf("last item = %s", items[4])
	}
	// The next link's foreign host is ignored: every request hit our server.
	if n := len(*seen); n != 1+3 {
		t.Errorf("made %d requests, want 4: %v", n, *seen)
	}
}

func TestDeleteGlobalAndNonJSONError(t *testing.T) {
	srv, seen := fakeAPI(t)
	c := apiclient.New(srv.URL, nil)
	ctx := context.Background()
	if err := c.Delete(ctx, "global-secrets", "", "s1"); err != nil {
		t.Fatal(err)
	}
	if (*seen)[0] != "DELETE /global-secrets/s1" {
		t.Errorf("sent %q", (*seen)[0])
	}
	_, err := c.Do(ctx, http.MethodGet, "/broken", nil, nil, nil)
	var apiErr *apiclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || !strings.Contains(apiErr.Error(), "Bad Gateway (<html>upstream down</html>)") {
		t.Fatalf("got %v", err)
	}
}

func TestConnectionRefusedIsTransportError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := apiclient.New("http://"+addr, nil)
	_, err = c.Index(context.Background())
	var te *apiclient.TransportError
	if !errors.As(err, &te) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want a TransportError wrapping ECONNREFUSED, got %#v", err)
	}
	if !strings.HasPrefix(te.Error(), "GET http://"+addr+"/: ") {
		t.Errorf("rendered %q", te.Error())
	}
}

func TestResourcePathEscapes(t *testing.T) {
	for _, tc := range []struct{ plural, mesh, name, want string }{
		{"meshes", "", "", "/meshes"},
		{"meshes", "", "default", "/meshes/default"},
		{"dataplanes", "", "", "/dataplanes"},
		{"dataplanes", "m 1", "a/b", "/meshes/m%201/dataplanes/a%2Fb"},
	} {
		if got := apiclient.ResourcePath(tc.plural, tc.mesh, tc.name); got != tc.want {
			t.Errorf("ResourcePath(%q,%q,%q) = %q, want %q", tc.plural, tc.mesh, tc.name, got, tc.want)
		}
	}
}
