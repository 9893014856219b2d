package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// maxInputBytes bounds what apply reads from a file, stdin or URL.
const maxInputBytes = 16 << 20

// applyItem is one parsed document ready to send.
type applyItem struct {
	doc  document
	desc *resource.Descriptor
	mesh string
	name string
	obj  map[string]any
	// text is the document with its placeholders filled.
	text string
}

func (it applyItem) ref() string { return describeRef(it.desc, it.mesh, it.name) }

func (r *root) applyCmd() *cobra.Command {
	var file string
	var varFlags []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update resources from YAML or JSON",
		Long: "Create or update the resources of a file (several YAML documents separated by ---).\n" +
			"Each document is PUT to its REST path, from its type, mesh and name.\n\n" +
			"{{ name }} placeholders are filled from --var name=value; a placeholder without a value\n" +
			"is an error, reported before anything is sent.",
		Example: "  trellisctl apply -f policies.yaml\n" +
			"  trellisctl apply -f dataplane.yaml -v name=web-1 -v address=10.0.0.7\n" +
			"  cat mesh.yaml | trellisctl apply -f -\n" +
			"  trellisctl apply -f dataplane.yaml -v name=web-1 --dry-run",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vars, err := parseVars(varFlags)
			if err != nil {
				return err
			}
			docs, err := r.readDocuments(cmd, file)
			if err != nil {
				return err
			}
			items, err := r.prepare(docs, vars)
			if err != nil {
				return err
			}
			if dryRun {
				return printDryRun(cmd.OutOrStdout(), items)
			}
			return r.applyItems(cmd, items)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "file, directory (its *.yaml and *.yml), http(s) URL, or - for stdin (required)")
	f.StringArrayVarP(&varFlags, "var", "v", nil, "fill {{ NAME }} placeholders: NAME=VALUE (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "print the resolved documents as YAML instead of applying them")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readDocuments reads and splits the input named by -f.
func (r *root) readDocuments(cmd *cobra.Command, file string) ([]document, error) {
	var sources []struct{ name, data string }
	add := func(name string, data []byte) {
		sources = append(sources, struct{ name, data string }{name, string(data)})
	}
	switch {
	case file == "-":
		data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxInputBytes))
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		add("-", data)
	case strings.HasPrefix(file, "http://") || strings.HasPrefix(file, "https://"):
		data, err := r.fetch(cmd.Context(), file)
		if err != nil {
			return nil, err
		}
		add(file, data)
	default:
		files, err := inputFiles(file)
		if err != nil {
			return nil, err
		}
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", p, err)
			}
			add(p, data)
		}
	}
	var docs []document
	for _, s := range sources {
		docs = append(docs, splitDocuments(s.name, s.data, len(docs)+1)...)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no resources to apply in %s", file)
	}
	return docs, nil
}

// inputFiles expands a directory into its YAML files, sorted by name.
func inputFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

func (r *root) fetch(ctx context.Context, u string) ([]byte, error) {
	hc := r.opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: r.timeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInputBytes))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	return data, nil
}

// prepare renders, parses and checks every document before anything is
// sent, so that a typo in the last document applies nothing.
func (r *root) prepare(docs []document, vars map[string]string) ([]applyItem, error) {
	var missingMsgs []string
	rendered := make([]string, len(docs))
	for i, d := range docs {
		text, missing := render(d.text, vars)
		rendered[i] = text
		if len(missing) > 0 {
			missingMsgs = append(missingMsgs, fmt.Sprintf("%s: %s", d, quoteAll(missing)))
		}
	}
	if len(missingMsgs) > 0 {
		return nil, fmt.Errorf("template variables without a value (pass them with -v NAME=VALUE; nothing was applied):\n* %s",
			strings.Join(missingMsgs, "\n* "))
	}
	items := make([]applyItem, 0, len(docs))
	for i, d := range docs {
		it, err := r.parseDocument(d, rendered[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w (nothing was applied)", d, err)
		}
		items = append(items, it)
	}
	return items, nil
}

func (r *root) parseDocument(d document, text string) (applyItem, error) {
	obj, err := resource.ParseObject([]byte(text))
	if err != nil {
		return applyItem{}, err
	}
	it := applyItem{doc: d, obj: obj, text: text}
	typ, _ := obj["type"].(string)
	if typ == "" {
		return it, fmt.Errorf("the document has no type (e.g. type: MeshTimeout)")
	}
	desc, ok := r.reg.ByKind(typ)
	if !ok {
		if kind, unsupported := r.reg.Unsupported(typ); unsupported {
			return it, fmt.Errorf("%s is not supported yet by Trellis", kind)
		}
		return it, fmt.Errorf("unknown type %q; valid types are: %s", typ, strings.Join(r.kindNames(), ", "))
	}
	it.desc = desc
	it.name, _ = obj["name"].(string)
	if it.name == "" {
		return it, fmt.Errorf("%s has no name", desc.Kind)
	}
	if desc.Scope == resource.ScopeMesh {
		it.mesh, _ = obj["mesh"].(string)
		if it.mesh == "" {
			return it, fmt.Errorf("%s %q has no mesh: %s is mesh-scoped, add e.g. mesh: default", desc.Kind, it.name, desc.Kind)
		}
	}
	return it, nil
}

// kindNames lists every kind's type name, sorted.
func (r *root) kindNames() []string {
	var out []string
	for _, d := range r.reg.All() {
		out = append(out, d.Kind)
	}
	return out
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func printDryRun(w io.Writer, items []applyItem) error {
	for i, it := range items {
		// Re-encode from an order-keeping parse, so the output reads like
		// the input with its placeholders filled and comments dropped.
		var doc yamlv2.MapSlice
		if err := yamlv2.Unmarshal([]byte(it.text), &doc); err != nil {
			return fmt.Errorf("%s: %w", it.doc, err)
		}
		data, err := yamlv2.Marshal(doc)
		if err != nil {
			return fmt.Errorf("%s: encoding as YAML: %w", it.doc, err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// applyItems PUTs each document in order and stops at the first failure,
// saying which documents were applied before it.
func (r *root) applyItems(cmd *cobra.Command, items []applyItem) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	for i, it := range items {
		body, err := json.Marshal(it.obj)
		if err != nil {
			return fmt.Errorf("%s: encoding: %w", it.doc, err)
		}
		created, warnings, err := c.Put(cmd.Context(), it.desc.Path, meshFor(it.desc, it.mesh), it.name, json.RawMessage(body))
		if err != nil {
			return fmt.Errorf("%s: applying %s: %w\n%s", it.doc, it.ref(), err, appliedNote(i, len(items)))
		}
		verb := "configured"
		if created {
			verb = "created"
		}
		fmt.Fprintf(out, "%s %q %s\n", it.desc.Kind, it.name, verb)
		for _, w := range warnings {
			fmt.Fprintf(errOut, "Warning: %s %q: %s\n", it.desc.Kind, it.name, w)
		}
	}
	return nil
}

func appliedNote(done, total int) string {
	rest := total - done - 1
	switch {
	case done == 0 && rest == 0:
		return "Nothing was applied."
	case done == 0:
		return fmt.Sprintf("Nothing was applied; the %d document(s) after it were not sent.", rest)
	case rest == 0:
		return fmt.Sprintf("The %d document(s) before it were applied and stay applied.", done)
	default:
		return fmt.Sprintf("The %d document(s) before it were applied and stay applied; the %d after it were not sent.", done, rest)
	}
}
