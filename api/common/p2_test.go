package common_test

import (
	"encoding/json"
	"testing"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

func TestIntOrStringKeepsForm(t *testing.T) {
	for _, in := range []string{`50`, `"50"`, `"0.1"`, `0`, `-3`, `"abc"`, `1.5`, `true`, `{"a":1}`} {
		var v common.IntOrString
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatalf("unmarshal %s: %v", in, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %s: %v", in, err)
		}
		if string(out) != in {
			t.Errorf("%s re-encoded as %s", in, out)
		}
	}
}

func TestValidatePercentage(t *testing.T) {
	cases := map[string]string{
		`50`: "", `"99.9"`: "", `0`: "", `100`: "",
		`101`: "must be between 0 and 100", `"-0.5"`: "must be between 0 and 100",
		`"x"`: "string is not a number", `0.5`: "must be an integer or a string holding a decimal number",
	}
	for in, want := range cases {
		var v common.IntOrString
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatal(err)
		}
		var errs validate.Errors
		common.ValidatePercentage(&errs, validate.NewPath("p"), &v, true)
		got := ""
		if !errs.Empty() {
			got = errs.Violations[0].Reason
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	zero := common.IntOrStringFromInt(0)
	var errs validate.Errors
	common.ValidatePercentage(&errs, validate.NewPath("p"), &zero, false)
	if errs.Empty() {
		t.Error("0 accepted where zero is not allowed")
	}
}

func TestAddressChecks(t *testing.T) {
	urls := map[string]bool{
		"127.0.0.1:5000": true, "google.com": true, "http://logs.com": true, "logs.local:5000": true,
		"http://jaeger-collector:9411/api/v2/spans": true, "[::1]:80": true,
		"not_valid_url": false, "http://": false, "": false, "host:99999": false, "a b": false,
	}
	for in, want := range urls {
		if got := common.IsLooseURL(in); got != want {
			t.Errorf("IsLooseURL(%q) = %v", in, got)
		}
	}
	hostPorts := map[string]bool{"otel:4317": true, "10.0.0.1:1": true, "otel": false, "otel:0": false, ":80": false}
	for in, want := range hostPorts {
		if got := common.IsHostPort(in); got != want {
			t.Errorf("IsHostPort(%q) = %v", in, got)
		}
	}
	if !common.IsCIDR("10.0.0.0/8") || common.IsCIDR("10.0.0.1") || !common.IsIP("fd00::1") {
		t.Error("IP/CIDR checks")
	}
	if !common.IsLowerSubdomain("a.example.com") || common.IsLowerSubdomain("A.example.com") || common.IsDNSName("-a.com") {
		t.Error("DNS checks")
	}
}

func TestListenerTagsOnlyForGateways(t *testing.T) {
	rules := common.RefRules{Allowed: []common.TargetRefKind{common.Mesh, common.MeshGateway}}
	var errs validate.Errors
	common.ValidateTargetRefListenerTags(&errs, validate.NewPath("targetRef"),
		common.TargetRef{Kind: common.MeshGateway, Name: "gw", Tags: map[string]string{"port": "http"}}, rules)
	if !errs.Empty() {
		t.Errorf("gateway listener tags rejected: %v", errs.Violations)
	}
	common.ValidateTargetRefListenerTags(&errs, validate.NewPath("targetRef"),
		common.TargetRef{Kind: common.MeshGateway, Name: "gw", Tags: map[string]string{"port": ""}}, rules)
	if errs.Empty() || errs.Violations[0].Field != `targetRef.tags["port"]` {
		t.Errorf("empty tag value: %v", errs.Violations)
	}
}

func FuzzIntOrString(f *testing.F) {
	for _, s := range []string{`1`, `"0.5"`, `null`, `[1]`, `1e3`, `"\u00e9"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		var v common.IntOrString
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal after unmarshal %q: %v", in, err)
		}
		var again common.IntOrString
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if again.String() != v.String() || again.IsString() != v.IsString() {
			t.Fatalf("%q -> %s changed meaning", in, out)
		}
		var errs validate.Errors
		common.ValidatePercentage(&errs, validate.NewPath("p"), &v, true)
	})
}
