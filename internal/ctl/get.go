package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Output formats of get.
const (
	outputTable = "table"
	outputYAML  = "yaml"
	outputJSON  = "json"
)

// DefaultMesh is the mesh get and delete use for mesh-scoped kinds when
// --mesh is not given.
const DefaultMesh = "default"

type getArgs struct {
	mesh      string
	allMeshes bool
	output    string
	size      int
	offset    int
	nameLike  string
	labels    map[string]string
}

func (r *root) getCmd() *cobra.Command {
	var a getArgs
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show one resource or list resources of a kind",
		Long: "Show one resource, or list the resources of a kind. KIND is what you would write in\n" +
			"type (MeshTimeout), its lowercase singular (meshtimeout) or its plural (meshtimeouts).\n" +
			"Mesh-scoped kinds are looked up in --mesh (default \"default\"), or every mesh with -A.",
		Example: "  trellisctl get meshes\n" +
			"  trellisctl get dataplanes -m demo\n" +
			"  trellisctl get meshtimeouts -A -o yaml\n" +
			"  trellisctl get meshtimeout mesh-timeout-all-default -o json",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: r.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(a.output); err != nil {
				return err
			}
			d, err := r.resolveKind(args[0])
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return r.getOne(cmd, d, args[1], a)
			}
			return r.getList(cmd, d, a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&a.mesh, "mesh", "m", DefaultMesh, "mesh of mesh-scoped kinds")
	f.BoolVarP(&a.allMeshes, "all-meshes", "A", false, "list across every mesh")
	f.StringVarP(&a.output, "output", "o", outputTable, "output format: table, yaml or json")
	f.IntVar(&a.size, "size", 0, "page size (1..1000): list one page instead of every resource")
	f.IntVar(&a.offset, "offset", 0, "how many resources to skip (with --size)")
	f.StringVar(&a.nameLike, "name-contains", "", "list only resources whose name contains this")
	f.StringToStringVarP(&a.labels, "label", "l", nil, "list only resources with these labels: KEY=VALUE[,KEY=VALUE]")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputYAML, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case outputTable, outputYAML, outputJSON:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, yaml or json", o)
}

func (r *root) getOne(cmd *cobra.Command, d *resource.Descriptor, name string, a getArgs) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	mesh := meshFor(d, a.mesh)
	raw, err := c.Get(cmd.Context(), d.Path, mesh, name)
	if errors.Is(err, apiclient.ErrNotFound) {
		return fmt.Errorf("there is no %s", describeRef(d, mesh, name))
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	switch a.output {
	case outputJSON:
		return printJSON(out, raw)
	case outputYAML:
		return printYAML(out, raw)
	}
	return printTable(out, d, []json.RawMessage{raw}, d.Scope == resource.ScopeMesh, nowFunc())
}

// listResult is the API's list object, as get prints it.
type listResult struct {
	Total int               `json:"total"`
	Items []json.RawMessage `json:"items"`
	Next  *string           `json:"next"`
}

func (r *root) getList(cmd *cobra.Command, d *resource.Descriptor, a getArgs) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	mesh := meshFor(d, a.mesh)
	if a.allMeshes {
		mesh = ""
	}
	opts := apiclient.ListOptions{Size: a.size, Offset: a.offset, Name: a.nameLike, Labels: a.labels}
	var res listResult
	if a.size > 0 || a.offset > 0 {
		page, err := c.List(cmd.Context(), d.Path, mesh, opts)
		if err != nil {
			return err
		}
		res = listResult{Total: page.Total, Items: page.Items, Next: page.Next}
	} else {
		items, err := c.ListAll(cmd.Context(), d.Path, mesh, opts)
		if err != nil {
			return err
		}
		res = listResult{Total: len(items), Items: items}
	}
	out := cmd.OutOrStdout()
	switch a.output {
	case outputJSON:
		return printJSON(out, res)
	case outputYAML:
		return printYAML(out, res)
	}
	if err := printTable(out, d, res.Items, d.Scope == resource.ScopeMesh, nowFunc()); err != nil {
		return err
	}
	if res.Next != nil {
		_, err := fmt.Fprintf(out, "\nRerun command with --offset=%d argument to retrieve more resources\n", a.offset+len(res.Items))
		return err
	}
	return nil
}

// printJSON prints v (a value or raw JSON) indented by two spaces.
func printJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// printYAML prints v (a value or raw JSON) as YAML.
func printYAML(w io.Writer, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	data, err := jsonToOrderedYAML(js)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
