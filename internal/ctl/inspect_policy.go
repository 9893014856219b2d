package ctl

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// policyDataplanesPage is the largest page inspect POLICY fetches at once
// when it lists every selected dataplane.
const policyDataplanesPage = 1000

// policyDataplanesList is the answer of GET
// /meshes/{mesh}/{plural}/{name}/_resources/dataplanes
// (internal/apiserver/inspect/policy_dataplanes.go).
type policyDataplanesList struct {
	Total int `json:"total"`
	Items []struct {
		Type   string            `json:"type"`
		Mesh   string            `json:"mesh"`
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
	} `json:"items"`
	Next *string `json:"next"`
}

type inspectPolicyArgs struct {
	mesh     string
	output   string
	size     int
	offset   int
	nameLike string
}

// inspectPolicyCmds returns one `inspect KIND NAME` command per policy
// kind, as kumactl has: it lists the dataplanes the policy selects.
func (r *root) inspectPolicyCmds() []*cobra.Command {
	var out []*cobra.Command
	for _, d := range r.reg.All() {
		if d.IsPolicy() && d.Scope == resource.ScopeMesh {
			out = append(out, r.inspectPolicyCmd(d))
		}
	}
	return out
}

func (r *root) inspectPolicyCmd(d *resource.Descriptor) *cobra.Command {
	var a inspectPolicyArgs
	cmd := &cobra.Command{
		Use:   d.Singular + " NAME",
		Short: fmt.Sprintf("List the dataplanes a %s selects", d.Kind),
		Long: fmt.Sprintf("List the dataplanes the %s NAME selects with its top-level targetRef, as the control\n"+
			"plane matches it when it builds their configuration (GET /meshes/MESH/%s/NAME/_resources/dataplanes).\n"+
			"trellisctl inspect dataplane DP --type rules shows what the policy merges into.", d.Kind, d.Path),
		Example: fmt.Sprintf("  trellisctl inspect %s my-policy\n  trellisctl inspect %s my-policy -m demo -o yaml", d.Singular, d.Singular),
		Aliases: []string{d.Path},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(a.output); err != nil {
				return err
			}
			return r.inspectPolicy(cmd, d, args[0], a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&a.mesh, "mesh", "m", DefaultMesh, "mesh of the policy")
	f.StringVarP(&a.output, "output", "o", outputTable, "output format: table, yaml or json")
	f.IntVar(&a.size, "size", 0, "page size (1..1000): list one page instead of every dataplane")
	f.IntVar(&a.offset, "offset", 0, "how many dataplanes to skip (with --size)")
	f.StringVar(&a.nameLike, "name-contains", "", "list only dataplanes whose name contains this")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputYAML, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (r *root) inspectPolicy(cmd *cobra.Command, d *resource.Descriptor, name string, a inspectPolicyArgs) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	path := "/meshes/" + url.PathEscape(a.mesh) + "/" + d.Path + "/" + url.PathEscape(name) + "/_resources/dataplanes"
	fetch := func(size, offset int) (*policyDataplanesList, error) {
		q := url.Values{}
		q.Set("size", strconv.Itoa(size))
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		if a.nameLike != "" {
			q.Set("name", a.nameLike)
		}
		var page policyDataplanesList
		// A 404 names the missing mesh or policy in its detail.
		if _, err := c.Do(cmd.Context(), http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		return &page, nil
	}
	var res *policyDataplanesList
	if a.size > 0 || a.offset > 0 {
		size := a.size
		if size == 0 {
			size = policyDataplanesPage
		}
		if res, err = fetch(size, a.offset); err != nil {
			return err
		}
	} else {
		// Every page: the answer then reads as one list with no next page.
		res = &policyDataplanesList{}
		for {
			page, err := fetch(policyDataplanesPage, len(res.Items))
			if err != nil {
				return err
			}
			res.Total = page.Total
			res.Items = append(res.Items, page.Items...)
			if page.Next == nil || len(page.Items) == 0 {
				break
			}
		}
	}
	out := cmd.OutOrStdout()
	switch a.output {
	case outputJSON:
		return printJSON(out, res)
	case outputYAML:
		return printYAML(out, res)
	}
	if err := printPolicyDataplanes(out, res); err != nil {
		return err
	}
	if res.Next != nil {
		_, err := fmt.Fprintf(out, "\nRerun command with --offset=%d argument to retrieve more dataplanes\n", a.offset+len(res.Items))
		return err
	}
	return nil
}

// printPolicyDataplanes prints the selected dataplanes, one a row, and
// how many there are.
func printPolicyDataplanes(w io.Writer, res *policyDataplanesList) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tMESH\tNAME\tLABELS")
	for _, it := range res.Items {
		labels := "-"
		if len(it.Labels) > 0 {
			labels = strings.Trim(tagList(it.Labels), "{}")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Type, it.Mesh, it.Name, labels)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nTotal: %d\n", res.Total)
	return err
}
