package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// nowFunc is the clock AGE columns count from.
var nowFunc = time.Now

// column is one table column: its header and how to fill it from an object.
type column struct {
	header string
	value  func(obj map[string]any) string
}

// printTable prints items as a kubectl-like table with columns chosen by
// kind: a MESH column for mesh-scoped kinds, NAME, a few kind-specific
// columns, and AGE.
func printTable(w io.Writer, d *resource.Descriptor, items []json.RawMessage, showMesh bool, now time.Time) error {
	var cols []column
	if showMesh {
		cols = append(cols, column{"MESH", func(o map[string]any) string { return str(o, "mesh") }})
	}
	cols = append(cols, column{"NAME", func(o map[string]any) string { return str(o, "name") }})
	cols = append(cols, kindColumns(d)...)
	cols = append(cols, column{"AGE", func(o map[string]any) string { return age(str(o, "creationTime"), now) }})

	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, raw := range items {
		obj, err := decodeObject(raw)
		if err != nil {
			return err
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.value(obj)
			if cells[i] == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decoding a resource from the control plane: %w", err)
	}
	return obj, nil
}

// kindColumns returns the columns specific to a kind.
func kindColumns(d *resource.Descriptor) []column {
	switch {
	case d.Kind == "Mesh":
		return []column{
			{"mTLS", meshMTLS},
			{"METRICS", func(o map[string]any) string { return enabledBackend(obj(o, "metrics")) }},
			{"LOGGING", func(o map[string]any) string { return backendNames(obj(o, "logging")) }},
			{"TRACING", func(o map[string]any) string { return backendNames(obj(o, "tracing")) }},
		}
	case d.Kind == "Dataplane":
		return []column{
			{"ADDRESS", func(o map[string]any) string { return str(obj(o, "networking"), "address") }},
			{"SERVICES", dataplaneServices},
		}
	case d.Kind == "ZoneIngress" || d.Kind == "ZoneEgress":
		return []column{{"ADDRESS", func(o map[string]any) string {
			n := obj(o, "networking")
			if a := str(n, "address"); a != "" {
				return fmt.Sprintf("%s:%s", a, scalar(n["port"]))
			}
			return ""
		}}}
	case d.IsPolicy():
		return []column{{"TARGETREF", func(o map[string]any) string { return targetRef(obj(obj(o, "spec"), "targetRef")) }}}
	}
	return nil
}

// meshMTLS renders the enabled mTLS backend as "type/name", or "off".
func meshMTLS(o map[string]any) string {
	mtls := obj(o, "mtls")
	enabled := str(mtls, "enabledBackend")
	if enabled == "" {
		return "off"
	}
	for _, b := range list(mtls, "backends") {
		bo, _ := b.(map[string]any)
		if str(bo, "name") == enabled && str(bo, "type") != "" {
			return str(bo, "type") + "/" + enabled
		}
	}
	return enabled
}

// enabledBackend renders a metrics section's enabled backend by type, or "off".
func enabledBackend(section map[string]any) string {
	enabled := str(section, "enabledBackend")
	if enabled == "" {
		return "off"
	}
	for _, b := range list(section, "backends") {
		bo, _ := b.(map[string]any)
		if str(bo, "name") == enabled && str(bo, "type") != "" {
			return str(bo, "type")
		}
	}
	return enabled
}

// backendNames lists a logging or tracing section's backends, or "off".
func backendNames(section map[string]any) string {
	var names []string
	for _, b := range list(section, "backends") {
		bo, _ := b.(map[string]any)
		if n := str(bo, "name"); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "off"
	}
	return strings.Join(names, ", ")
}

// dataplaneServices lists the kuma.io/service tags of a Dataplane's
// inbounds (or its gateway), deduplicated in order.
func dataplaneServices(o map[string]any) string {
	n := obj(o, "networking")
	var services []string
	seen := map[string]bool{}
	addFrom := func(tags map[string]any) {
		if s := str(tags, "kuma.io/service"); s != "" && !seen[s] {
			seen[s] = true
			services = append(services, s)
		}
	}
	for _, in := range list(n, "inbound") {
		io, _ := in.(map[string]any)
		addFrom(obj(io, "tags"))
	}
	addFrom(obj(obj(n, "gateway"), "tags"))
	return strings.Join(services, ",")
}

// targetRef renders a policy's top-level targetRef: "Mesh",
// "MeshService/backend", "MeshSubset version=v1", "Dataplane app=web".
func targetRef(ref map[string]any) string {
	kind := str(ref, "kind")
	if kind == "" {
		return "Mesh"
	}
	s := kind
	if name := str(ref, "name"); name != "" {
		s += "/" + name
	}
	for _, key := range []string{"tags", "labels"} {
		if kv := pairs(obj(ref, key)); kv != "" {
			s += " " + kv
		}
	}
	if sec := str(ref, "sectionName"); sec != "" {
		s += " section=" + sec
	}
	var proxyTypes []string
	for _, p := range list(ref, "proxyTypes") {
		proxyTypes = append(proxyTypes, scalar(p))
	}
	if len(proxyTypes) > 0 {
		s += " proxyTypes=" + strings.Join(proxyTypes, ",")
	}
	return s
}

func pairs(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + scalar(m[k])
	}
	return strings.Join(out, ",")
}

// age renders the time since an RFC 3339 timestamp like kubectl does:
// seconds under two minutes, then minutes, hours, days, years.
func age(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.IsZero() || t.Year() <= 1 {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	default:
		return fmt.Sprintf("%dy", int(d.Hours()/24/365))
	}
}

func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func list(m map[string]any, key string) []any {
	v, _ := m[key].([]any)
	return v
}

func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
