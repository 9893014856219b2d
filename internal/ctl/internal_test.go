package ctl

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResolveTargetURL(t *testing.T) {
	env := map[string]string{}
	home := t.TempDir()
	r := &root{opts: Options{
		Getenv:  func(k string) string { return env[k] },
		HomeDir: func() (string, error) { return home, nil },
	}.withDefaults()}

	tg, err := r.resolveTarget()
	if err != nil || tg.url != DefaultAPIURL {
		t.Fatalf("no config: %q from %q, %v", tg.url, tg.from, err)
	}
	cfg := defaultConfig()
	cfg.addControlPlane(ControlPlane{Name: "x", Coordinates: Coordinates{APIServer: APIServer{URL: "http://cfg:1/"}}}, false)
	if err := saveConfig(filepath.Join(home, ".trellisctl", "config"), cfg); err != nil {
		t.Fatal(err)
	}
	if tg, _ := r.resolveTarget(); tg.url != "http://cfg:1" {
		t.Errorf("config: %q", tg.url)
	}
	env[EnvAPIURL] = "http://env:2"
	if tg, _ := r.resolveTarget(); tg.url != "http://env:2" {
		t.Errorf("env: %q", tg.url)
	}
	r.apiURL = "http://flag:3"
	if tg, _ := r.resolveTarget(); tg.url != "http://flag:3" || tg.from != "--api-url" {
		t.Errorf("flag: %q from %q", tg.url, tg.from)
	}
	// Removing every control plane falls back to the default.
	delete(env, EnvAPIURL)
	r.apiURL = ""
	cfg.removeControlPlane("x")
	cfg.removeControlPlane("local")
	if err := saveConfig(filepath.Join(home, ".trellisctl", "config"), cfg); err != nil {
		t.Fatal(err)
	}
	if tg, _ := r.resolveTarget(); tg.url != DefaultAPIURL {
		t.Errorf("empty config: %q", tg.url)
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "# header\n---\na: 1\n---   \nb: 2\n--- # next\n\n# only a comment\n---\nc: 3\n...\n"
	docs := splitDocuments("f.yaml", in, 1)
	var got []string
	var lines []int
	for _, d := range docs {
		got = append(got, strings.TrimSpace(d.text))
		lines = append(lines, d.line)
	}
	if !reflect.DeepEqual(got, []string{"a: 1", "b: 2", "c: 3"}) || !reflect.DeepEqual(lines, []int{3, 5, 10}) {
		t.Errorf("docs = %q at lines %v", got, lines)
	}
	if docs[2].String() != "document 3 (f.yaml, line 10)" {
		t.Errorf("String() = %q", docs[2].String())
	}
}

func TestRender(t *testing.T) {
	text := "name: {{ name }}\nport: {{port}}\ntags: {{{ a.b }}}\n# note: {{ commented }}\nx: {{ missing }} {{ missing }}\nliteral: '{{ .Go }}'\n"
	out, missing := render(text, map[string]string{"name": "web", "port": "80", "a.b": "x=y,z"})
	want := "name: web\nport: 80\ntags: x=y,z\n# note: {{ commented }}\nx: {{ missing }} {{ missing }}\nliteral: '{{ .Go }}'\n"
	if out != want || !reflect.DeepEqual(missing, []string{"missing"}) {
		t.Errorf("render = %q, missing %v", out, missing)
	}
	vars, err := parseVars([]string{"a=b=c", "list=x,y"})
	if err != nil || vars["a"] != "b=c" || vars["list"] != "x,y" {
		t.Errorf("parseVars = %v, %v", vars, err)
	}
	if _, err := parseVars([]string{"novalue"}); err == nil {
		t.Error("parseVars accepted a flag without '='")
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for ts, want := range map[string]string{
		"2025-01-10T11:59:30Z": "30s",
		"2025-01-10T11:30:00Z": "30m",
		"2025-01-10T02:00:00Z": "10h",
		"2025-01-01T12:00:00Z": "9d",
		"2021-01-01T12:00:00Z": "4y",
		"0001-01-01T00:00:00Z": "-",
		"garbage":              "-",
	} {
		if got := age(ts, now); got != want {
			t.Errorf("age(%s) = %q, want %q", ts, got, want)
		}
	}
}

func TestTargetRefColumn(t *testing.T) {
	for _, tc := range []struct {
		ref  map[string]any
		want string
	}{
		{nil, "Mesh"},
		{map[string]any{"kind": "MeshService", "name": "backend"}, "MeshService/backend"},
		{map[string]any{"kind": "MeshSubset", "tags": map[string]any{"version": "v1", "app": "x"}}, "MeshSubset app=x,version=v1"},
		{map[string]any{"kind": "Dataplane", "labels": map[string]any{"app": "web"}, "sectionName": "http"}, "Dataplane app=web section=http"},
		{map[string]any{"kind": "Mesh", "proxyTypes": []any{"Gateway"}}, "Mesh proxyTypes=Gateway"},
	} {
		if got := targetRef(tc.ref); got != tc.want {
			t.Errorf("targetRef(%v) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}
