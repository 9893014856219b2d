package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

// Views of inspect dataplane --type.
const (
	inspectOverview = "overview"
	inspectConfig   = "config"
)

func (r *root) inspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Inspect data plane proxies and policies: connection state, configuration, matching",
		Long: "Inspect data plane proxies through the control plane's inspect API: whether each proxy is\n" +
			"connected, to which control-plane instance, which configuration version it accepted and\n" +
			"what it rejected last, the xDS configuration the control plane generates for it, and the\n" +
			"policies that apply to it. inspect POLICY-KIND NAME lists the proxies a policy selects.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(r.inspectDataplanesCmd(), r.inspectDataplaneCmd())
	cmd.AddCommand(r.inspectPolicyCmds()...)
	return cmd
}

type inspectListArgs struct {
	mesh      string
	allMeshes bool
	output    string
	size      int
	offset    int
	nameLike  string
	tags      map[string]string
	gateway   string
}

func (r *root) inspectDataplanesCmd() *cobra.Command {
	var a inspectListArgs
	cmd := &cobra.Command{
		Use:   "dataplanes",
		Short: "List data plane proxies with their connection state",
		Long: "List the dataplanes of a mesh (or every mesh with -A) with their connection state: a proxy\n" +
			"is Online while its newest xDS stream is open. LAST CONNECTED and LAST UPDATED count from\n" +
			"that stream's start and its last configuration update; NACK is the last error the proxy\n" +
			"reported when it rejected a configuration.",
		Example: "  trellisctl inspect dataplanes\n" +
			"  trellisctl inspect dataplanes -A\n" +
			"  trellisctl inspect dataplanes -m demo --tag kuma.io/service=web -o yaml",
		Aliases: []string{"dps"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(a.output); err != nil {
				return err
			}
			return r.inspectDataplanes(cmd, a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&a.mesh, "mesh", "m", DefaultMesh, "mesh of the dataplanes")
	f.BoolVarP(&a.allMeshes, "all-meshes", "A", false, "list across every mesh")
	f.StringVarP(&a.output, "output", "o", outputTable, "output format: table, yaml or json")
	f.IntVar(&a.size, "size", 0, "page size (1..1000): list one page instead of every dataplane")
	f.IntVar(&a.offset, "offset", 0, "how many dataplanes to skip (with --size)")
	f.StringVar(&a.nameLike, "name-contains", "", "list only dataplanes whose name contains this")
	f.StringToStringVar(&a.tags, "tag", nil, "list only dataplanes with an inbound (or gateway) carrying these tags: KEY=VALUE[,KEY=VALUE]")
	f.StringVar(&a.gateway, "gateway", "", "list only gateways (true, builtin, delegated) or only sidecars (false)")
	f.Lookup("gateway").NoOptDefVal = "true"
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputYAML, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("gateway", cobra.FixedCompletions([]string{"true", "false", "builtin", "delegated"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (r *root) inspectDataplanes(cmd *cobra.Command, a inspectListArgs) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	mesh := a.mesh
	if a.allMeshes {
		mesh = ""
	}
	opts := apiclient.ListOptions{Size: a.size, Offset: a.offset, Name: a.nameLike, Extra: url.Values{}}
	for _, k := range sortedKeys(a.tags) {
		opts.Extra.Add("tag", k+":"+a.tags[k])
	}
	if a.gateway != "" {
		opts.Extra.Set("gateway", a.gateway)
	}
	var res listResult
	if a.size > 0 || a.offset > 0 {
		page, err := c.List(cmd.Context(), apiclient.DataplaneOverviews, mesh, opts)
		if err != nil {
			return err
		}
		res = listResult{Total: page.Total, Items: page.Items, Next: page.Next}
	} else {
		items, err := c.ListAll(cmd.Context(), apiclient.DataplaneOverviews, mesh, opts)
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
	if err := printOverviewTable(out, res.Items, nowFunc()); err != nil {
		return err
	}
	if res.Next != nil {
		_, err := fmt.Fprintf(out, "\nRerun command with --offset=%d argument to retrieve more dataplanes\n", a.offset+len(res.Items))
		return err
	}
	return nil
}

type inspectOneArgs struct {
	mesh   string
	view   string
	output string
}

func (r *root) inspectDataplaneCmd() *cobra.Command {
	var a inspectOneArgs
	cmd := &cobra.Command{
		Use:   "dataplane NAME",
		Short: "Show one data plane proxy's overview, generated configuration or policies",
		Long: "Show one dataplane. --type overview (the default) prints the Dataplane with its connection\n" +
			"state (DataplaneOverview) as YAML; --type config prints the xDS configuration the control\n" +
			"plane generates for the proxy as JSON. -o picks the other format. --type policies shows,\n" +
			"per policy kind and inbound, which policies apply, and for MeshTrafficPermission the\n" +
			"resulting allow/deny rules in the order they are checked. --type rules shows, per policy\n" +
			"kind, the merged configuration of each inbound (from[] rules, per client) and of each\n" +
			"outbound (the to[] rule of its service) with the policies it was merged from. For policies\n" +
			"and rules, -o yaml or json prints the control plane's _rules answer.",
		Example: "  trellisctl inspect dataplane web-1\n" +
			"  trellisctl inspect dataplane web-1 -m demo --type config\n" +
			"  trellisctl inspect dataplane web-1 --type policies\n" +
			"  trellisctl inspect dataplane web-1 --type rules",
		Aliases:           []string{"dp"},
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeDataplanes(&a.mesh),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.inspectDataplane(cmd, args[0], a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&a.mesh, "mesh", "m", DefaultMesh, "mesh of the dataplane")
	f.StringVar(&a.view, "type", inspectOverview, "what to show: overview, config, policies or rules")
	f.StringVarP(&a.output, "output", "o", "", "output format: yaml or json (default yaml for overview, json for config, text for policies and rules)")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{inspectOverview, inspectConfig, inspectPolicies, inspectRules}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputYAML, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (r *root) inspectDataplane(cmd *cobra.Command, name string, a inspectOneArgs) error {
	output := a.output
	switch a.view {
	case inspectOverview:
		if output == "" {
			output = outputYAML
		}
	case inspectConfig:
		if output == "" {
			output = outputJSON
		}
	case inspectPolicies, inspectRules:
	default:
		return fmt.Errorf("unknown --type %q: use overview, config, policies or rules", a.view)
	}
	textView := a.view == inspectPolicies || a.view == inspectRules
	if output != outputYAML && output != outputJSON && (!textView || output != "") {
		return fmt.Errorf("unknown output format %q: use yaml or json", output)
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	switch a.view {
	case inspectConfig:
		raw, err = c.DataplaneConfig(cmd.Context(), a.mesh, name)
	case inspectPolicies, inspectRules:
		raw, err = dataplaneRules(cmd.Context(), c, a.mesh, name)
	default:
		raw, err = c.DataplaneOverview(cmd.Context(), a.mesh, name)
	}
	if errors.Is(err, apiclient.ErrNotFound) {
		return fmt.Errorf("there is no Dataplane %q in mesh %q", name, a.mesh)
	}
	if err != nil {
		return err
	}
	switch output {
	case outputJSON:
		return printJSON(cmd.OutOrStdout(), raw)
	case outputYAML:
		return printYAML(cmd.OutOrStdout(), raw)
	}
	if a.view == inspectRules {
		return printRulesText(cmd.OutOrStdout(), raw, r.reg)
	}
	return printPoliciesText(cmd.OutOrStdout(), raw)
}

// completeDataplanes completes a dataplane name in the mesh of the --mesh
// flag, asking the control plane; it offers nothing when that fails.
func (r *root) completeDataplanes(mesh *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := r.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		items, err := c.ListAll(cmd.Context(), "dataplanes", *mesh, apiclient.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, raw := range items {
			if o, err := decodeObject(raw); err == nil {
				names = append(names, str(o, "name"))
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shorten keeps s on one line and at most n runes, ending cut text with "…".
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if rs := []rune(s); len(rs) > n {
		return string(rs[:n-1]) + "…"
	}
	return s
}
