package install_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"

	chart "github.com/trellis-mesh/trellis/deploy/helm/trellis"
)

// renderChart renders the chart's templates the way `helm template
// --include-crds` does, with Go's text/template, Sprig and the Helm
// functions the chart uses (include, toYaml): the CRDs under crds/, then
// every template but the _helpers, as YAML documents.
func renderChart(t testing.TB, ns string, values map[string]any) []map[string]any {
	t.Helper()
	chartMeta := map[string]any{}
	raw, err := fs.ReadFile(chart.Files, "Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &chartMeta); err != nil {
		t.Fatal(err)
	}
	// Helm passes values through JSON (numbers become float64).
	vj, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := json.Unmarshal(vj, &vals); err != nil {
		t.Fatal(err)
	}
	data := map[string]any{
		"Values":  vals,
		"Release": map[string]any{"Name": "trellis", "Namespace": ns, "Service": "Helm"},
		"Chart":   map[string]any{"Name": chartMeta["name"], "Version": chartMeta["version"], "AppVersion": chartMeta["appVersion"]},
	}
	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["include"] = func(name string, d any) (string, error) {
		var b bytes.Buffer
		err := root.ExecuteTemplate(&b, name, d)
		return b.String(), err
	}
	funcs["toYaml"] = func(v any) string {
		out, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	root.Funcs(funcs)
	files, err := fs.Glob(chart.Files, "templates/*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		src, err := fs.ReadFile(chart.Files, f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.New(f).Parse(string(src)); err != nil {
			t.Fatalf("parsing %s: %v", f, err)
		}
	}
	var docs []string
	crds, _ := fs.Glob(chart.Files, "crds/*.yaml")
	sort.Strings(crds)
	for _, f := range crds {
		src, _ := fs.ReadFile(chart.Files, f)
		docs = append(docs, string(src))
	}
	for _, f := range files {
		if strings.HasPrefix(path.Base(f), "_") {
			continue
		}
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, f, data); err != nil {
			t.Fatalf("rendering %s: %v", f, err)
		}
		// helm splits the output into documents and trims each.
		for _, doc := range strings.Split(b.String(), "\n---") {
			docs = append(docs, strings.TrimSpace(doc))
		}
	}
	return parseDocs(t, strings.Join(docs, "\n---\n"))
}

// parseDocs splits a YAML stream into objects (JSON-typed: numbers are
// float64), dropping empty documents.
func parseDocs(t testing.TB, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, doc := range strings.Split("\n"+stream, "\n---") {
		o := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// objectKey names an object: kind/namespace/name.
func objectKey(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v/%v", o["kind"], md["namespace"], md["name"])
}

// keyMaterial returns the PEM values a rendering carries: the Secret's
// ca.crt, tls.crt and tls.key and each webhook's caBundle (decoded).
func keyMaterial(t testing.TB, objs []map[string]any) (secret map[string]string, caBundles []string) {
	t.Helper()
	secret = map[string]string{}
	for _, o := range objs {
		switch o["kind"] {
		case "Secret":
			for k, v := range o["data"].(map[string]any) {
				secret[k] = b64(t, v)
			}
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			for _, w := range o["webhooks"].([]any) {
				cc := w.(map[string]any)["clientConfig"].(map[string]any)
				caBundles = append(caBundles, b64(t, cc["caBundle"]))
			}
		}
	}
	return secret, caBundles
}

// withoutKeyMaterial returns a deep copy of objs (keyed by objectKey) with
// the generated certificates and key replaced by placeholders.
func withoutKeyMaterial(t testing.TB, objs []map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	var cp []map[string]any
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, o := range cp {
		switch o["kind"] {
		case "Secret":
			d := o["data"].(map[string]any)
			for k := range d {
				d[k] = "<" + k + ">"
			}
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			for _, w := range o["webhooks"].([]any) {
				w.(map[string]any)["clientConfig"].(map[string]any)["caBundle"] = "<caBundle>"
			}
		}
		k := objectKey(o)
		if _, dup := out[k]; dup {
			t.Errorf("object %s rendered twice", k)
		}
		out[k] = o
	}
	return out
}
