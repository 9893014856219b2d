package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

// inspectPolicies is the --type of inspect dataplane that shows the
// policies applied to a proxy (GET .../_rules).
const inspectPolicies = "policies"

// dataplaneRules fetches GET /meshes/{mesh}/dataplanes/{name}/_rules.
func dataplaneRules(ctx context.Context, c *apiclient.Client, mesh, name string) (json.RawMessage, error) {
	path := "/meshes/" + url.PathEscape(mesh) + "/dataplanes/" + url.PathEscape(name) + "/_rules"
	var raw json.RawMessage
	if _, err := c.Do(ctx, http.MethodGet, path, nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// rulesView is the part of the _rules answer the text view shows
// (internal/apiserver/inspect/rules.go documents all of it).
type rulesView struct {
	Mesh        string `json:"mesh"`
	Dataplane   string `json:"dataplane"`
	MTLSEnabled bool   `json:"mtlsEnabled"`
	Rules       []struct {
		Type     string `json:"type"`
		Policies []struct {
			Name string `json:"name"`
		} `json:"policies"`
		Inbounds []struct {
			Name     string            `json:"name"`
			Address  string            `json:"address"`
			Port     uint32            `json:"port"`
			Tags     map[string]string `json:"tags"`
			Policies []struct {
				Name string `json:"name"`
			} `json:"policies"`
			Permissions []struct {
				Principal struct {
					Any    bool   `json:"any"`
					Exact  string `json:"exact"`
					Prefix string `json:"prefix"`
				} `json:"principal"`
				Action  string   `json:"action"`
				Origins []string `json:"origins"`
			} `json:"permissions"`
			Notes []string `json:"notes"`
		} `json:"inbounds"`
		Notes []string `json:"notes"`
	} `json:"rules"`
}

// printPoliciesText prints, per policy kind, which policies select the
// proxy and each inbound, and for MeshTrafficPermission the resulting
// authorization rules in the order they are checked. Other kinds that no
// policy selects take one line (--type rules shows what policies merge
// into).
func printPoliciesText(w io.Writer, raw json.RawMessage) error {
	var v rulesView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decoding the control plane's answer: %w", err)
	}
	var b strings.Builder
	for i, kr := range v.Rules {
		if i > 0 {
			b.WriteString("\n")
		}
		if kr.Type != "MeshTrafficPermission" {
			if len(kr.Policies) == 0 {
				fmt.Fprintf(&b, "%s: no policy selects this proxy\n", kr.Type)
				continue
			}
			fmt.Fprintf(&b, "%s\n  policies selecting the proxy: %s\n", kr.Type, strings.Join(policyNames(kr.Policies), ", "))
		} else {
			fmt.Fprintf(&b, "%s\n", kr.Type)
		}
		if !v.MTLSEnabled && kr.Type == "MeshTrafficPermission" {
			fmt.Fprintf(&b, "  mTLS is off in mesh %q: these rules are not enforced\n", v.Mesh)
		}
		for _, note := range kr.Notes {
			fmt.Fprintf(&b, "  note: %s\n", note)
		}
		if len(kr.Inbounds) == 0 {
			b.WriteString("  the proxy has no inbounds\n")
		}
		for _, in := range kr.Inbounds {
			fmt.Fprintf(&b, "\n  inbound %s:%d%s\n", in.Address, in.Port, inboundLabel(in.Name, in.Tags))
			if len(in.Policies) == 0 {
				fmt.Fprintf(&b, "    no %s selects this inbound\n", kr.Type)
			} else {
				names := make([]string, len(in.Policies))
				for i, p := range in.Policies {
					names[i] = p.Name
				}
				fmt.Fprintf(&b, "    policies (least to most specific): %s\n", strings.Join(names, ", "))
			}
			if in.Permissions == nil {
				continue
			}
			if len(in.Permissions) == 0 {
				b.WriteString("    every client is denied\n")
			} else {
				b.WriteString("    rules (the first that matches the client decides; others are denied):\n")
				tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "    #\tCLIENT\tACTION\tFROM")
				for i, p := range in.Permissions {
					client := "any client in the mesh"
					switch {
					case p.Principal.Exact != "":
						client = p.Principal.Exact
					case p.Principal.Prefix != "":
						client = p.Principal.Prefix + "*"
					}
					fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\n", i+1, client, p.Action, strings.Join(p.Origins, ", "))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			for _, note := range in.Notes {
				fmt.Fprintf(&b, "    not enforced: %s\n", note)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// inboundLabel renders an inbound's name and service for a heading.
func inboundLabel(name string, tags map[string]string) string {
	var parts []string
	if name != "" {
		parts = append(parts, "name "+name)
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+tags[k])
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
