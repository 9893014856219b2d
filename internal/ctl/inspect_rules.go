package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// inspectRules is the --type of inspect dataplane that shows, per kind,
// the merged configuration each inbound and outbound of a proxy gets and
// the policies it comes from (GET .../_rules).
const inspectRules = "rules"

// ruleView is one merged rule of the _rules answer.
type ruleView struct {
	Subset  map[string]string `json:"subset"`
	Conf    json.RawMessage   `json:"conf"`
	Origins []string          `json:"origins"`
}

// kindRulesView is what the _rules answer says about one policy kind
// (internal/apiserver/inspect/rules.go documents all of it).
type kindRulesView struct {
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
		FromRules []ruleView `json:"fromRules"`
		Rules     []struct {
			Policy  string          `json:"policy"`
			Index   int             `json:"index"`
			Matches json.RawMessage `json:"matches"`
			Conf    json.RawMessage `json:"conf"`
		} `json:"rules"`
		Notes []string `json:"notes"`
	} `json:"inbounds"`
	Outbounds []struct {
		Address  string          `json:"address"`
		Port     uint32          `json:"port"`
		Service  string          `json:"service"`
		Protocol string          `json:"protocol"`
		Conf     json.RawMessage `json:"conf"`
		Origins  []string        `json:"origins"`
		Notes    []string        `json:"notes"`
	} `json:"outbounds"`
	ToRules []ruleView `json:"toRules"`
	Default *ruleView  `json:"default"`
	Notes   []string   `json:"notes"`
}

// allRulesView is the _rules answer as the rules view reads it.
type allRulesView struct {
	Mesh        string          `json:"mesh"`
	Dataplane   string          `json:"dataplane"`
	MTLSEnabled bool            `json:"mtlsEnabled"`
	Rules       []kindRulesView `json:"rules"`
}

// printRulesText prints, per policy kind, the merged configuration of
// each inbound (from[] rules and rules[] items) and of each outbound (the
// to[] rule of its service), each with the policies it was merged from
// (least to most specific: the last wins). The kinds no policy selects
// are listed on one line at the end. reg says which sections a kind has, so that a to-only kind
// does not list inbounds and a from-only kind does not list outbounds.
func printRulesText(w io.Writer, raw json.RawMessage, reg *resource.Registry) error {
	var v allRulesView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decoding the control plane's answer: %w", err)
	}
	b := &strings.Builder{}
	mtls := "off"
	if v.MTLSEnabled {
		mtls = "on"
	}
	fmt.Fprintf(b, "Dataplane %q in mesh %q (mTLS %s). Confs are merged from the listed policies, least to most specific.\n", v.Dataplane, v.Mesh, mtls)
	var unused []string
	for i := range v.Rules {
		kr := &v.Rules[i]
		if len(kr.Policies) == 0 {
			unused = append(unused, kr.Type)
			continue
		}
		b.WriteString("\n")
		fmt.Fprintf(b, "%s (policies: %s)\n", kr.Type, strings.Join(policyNames(kr.Policies), ", "))
		if !v.MTLSEnabled && (kr.Type == "MeshTrafficPermission" || kr.Type == "MeshTLS") {
			fmt.Fprintf(b, "  mTLS is off in mesh %q: %s is not enforced\n", v.Mesh, kr.Type)
		}
		for _, note := range kr.Notes {
			fmt.Fprintf(b, "  note: %s\n", note)
		}
		hasFrom, hasTo := sectionsOf(reg, kr.Type)
		if kr.Default != nil {
			if err := writeConf(b, "  proxy-wide default"+fromList(kr.Default.Origins)+":", kr.Default.Conf); err != nil {
				return err
			}
		}
		if hasFrom {
			if err := writeInbounds(b, kr); err != nil {
				return err
			}
		}
		if hasTo {
			if err := writeOutbounds(b, kr); err != nil {
				return err
			}
		}
	}
	if len(unused) > 0 {
		fmt.Fprintf(b, "\nNo policy of these kinds selects the proxy: %s\n", strings.Join(unused, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeInbounds prints the from[] rules and rules[] items of each inbound.
func writeInbounds(b *strings.Builder, kr *kindRulesView) error {
	for _, in := range kr.Inbounds {
		head := fmt.Sprintf("  inbound %s:%d%s", in.Address, in.Port, inboundLabel(in.Name, in.Tags))
		if len(in.FromRules) == 0 && len(in.Rules) == 0 {
			fmt.Fprintf(b, "%s: nothing applies\n", head)
			continue
		}
		fmt.Fprintf(b, "%s\n", head)
		for _, r := range in.FromRules {
			if err := writeConf(b, "    from "+clients(r.Subset)+fromList(r.Origins)+":", r.Conf); err != nil {
				return err
			}
		}
		for _, r := range in.Rules {
			head := fmt.Sprintf("    rules[%d] of %s", r.Index, r.Policy)
			if len(r.Matches) > 0 && string(r.Matches) != "null" {
				head += " matching " + compactJSON(r.Matches)
			}
			if err := writeConf(b, head+":", r.Conf); err != nil {
				return err
			}
		}
		for _, note := range in.Notes {
			fmt.Fprintf(b, "    not enforced: %s\n", note)
		}
	}
	return nil
}

// writeOutbounds prints the to[] conf of each outbound, or the to[] rules
// by destination when the proxy lists no outbounds.
func writeOutbounds(b *strings.Builder, kr *kindRulesView) error {
	for _, out := range kr.Outbounds {
		head := fmt.Sprintf("  outbound %s:%d to %s", out.Address, out.Port, out.Service)
		if out.Protocol != "" {
			head += " [" + out.Protocol + "]"
		}
		if len(out.Conf) == 0 || string(out.Conf) == "null" {
			fmt.Fprintf(b, "%s: no to[] section applies\n", head)
			continue
		}
		if err := writeConf(b, head+fromList(out.Origins)+":", out.Conf); err != nil {
			return err
		}
		for _, note := range out.Notes {
			fmt.Fprintf(b, "    %s\n", note)
		}
	}
	if len(kr.Outbounds) > 0 || len(kr.ToRules) == 0 {
		return nil
	}
	b.WriteString("  the proxy lists no outbounds; to[] rules by destination (the first that matches applies):\n")
	for _, r := range kr.ToRules {
		if err := writeConf(b, "    to "+destinations(r.Subset)+fromList(r.Origins)+":", r.Conf); err != nil {
			return err
		}
	}
	return nil
}

// writeConf prints a heading and, under it, a conf as indented YAML.
func writeConf(b *strings.Builder, head string, conf json.RawMessage) error {
	b.WriteString(head)
	if len(conf) == 0 || string(conf) == "null" || string(conf) == "{}" {
		b.WriteString(" {}\n")
		return nil
	}
	b.WriteString("\n")
	y, err := jsonToOrderedYAML(conf)
	if err != nil {
		return err
	}
	indent := strings.Repeat(" ", len(head)-len(strings.TrimLeft(head, " "))+4)
	for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		b.WriteString(indent + line + "\n")
	}
	return nil
}

// sectionsOf says whether a kind has from[]/rules[] and to[] sections;
// unknown kinds show both.
func sectionsOf(reg *resource.Registry, kind string) (from, to bool) {
	if reg == nil {
		return true, true
	}
	d, ok := reg.ByKind(kind)
	if !ok || d.Policy == nil {
		return true, true
	}
	return d.Policy.HasFrom || d.Policy.HasRules, d.Policy.HasTo
}

func policyNames(ps []struct {
	Name string `json:"name"`
}) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// fromList renders origins as " (from a, b)".
func fromList(origins []string) string {
	if len(origins) == 0 {
		return ""
	}
	return " (from " + strings.Join(origins, ", ") + ")"
}

// clients names the clients of a from[] subset.
func clients(subset map[string]string) string {
	if len(subset) == 0 {
		return "any client"
	}
	return "clients " + tagList(subset)
}

// destinations names the destinations of a to[] subset.
func destinations(subset map[string]string) string {
	if len(subset) == 0 {
		return "any destination"
	}
	return tagList(subset)
}

// tagList renders tags as "{k1=v1, k2=v2}", sorted by key.
func tagList(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// compactJSON renders raw JSON on one line.
func compactJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(out)
}
