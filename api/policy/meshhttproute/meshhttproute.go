// Package meshhttproute holds the MeshHTTPRoute policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshHTTPRoute picks, for HTTP traffic leaving the proxies its top-level
// targetRef selects towards each to[].targetRef destination, an ordered list
// of rules: requests that fit a rule's matches get its filters (header
// changes, redirects, rewrites, mirroring) and are sent to its backendRefs.
package meshhttproute

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshHTTPRoute policy.
type Spec struct {
	// TargetRef selects the proxies whose outbound HTTP traffic is routed;
	// absent means the whole mesh. A MeshGateway ref routes the gateway's
	// listeners instead.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To lists destinations and the routing rules for traffic to each.
	To []To `json:"to,omitempty"`
}

// To is the set of routing rules for one destination.
type To struct {
	// TargetRef is the destination: a MeshService (or MeshExternalService,
	// MeshMultiZoneService), or the whole Mesh for gateway routes.
	TargetRef common.TargetRef `json:"targetRef"`
	// Hostnames limits gateway routes to requests for these host names; it
	// is only allowed when the top-level targetRef is a MeshGateway.
	Hostnames []string `json:"hostnames,omitempty"`
	// Rules are tried in order; the first whose matches fit handles the
	// request.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is one routing rule: what to match and what to do with a match.
type Rule struct {
	// Matches lists alternative request shapes; a request fitting any of
	// them is handled by this rule. At least one is required.
	Matches []Match `json:"matches"`
	// Default is what happens to matched requests; rules of several
	// policies with equal matches are merged field by field.
	Default RuleConf `json:"default"`
}

// Match describes requests by path, method, query parameters and headers;
// every part that is set must fit.
type Match struct {
	// Path matches the request path.
	Path *PathMatch `json:"path,omitempty"`
	// Method matches the HTTP method.
	Method *Method `json:"method,omitempty"`
	// QueryParams must all fit the request's query parameters.
	QueryParams []QueryParamsMatch `json:"queryParams,omitempty"`
	// Headers must all fit the request's headers.
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// PathMatchType says how PathMatch.Value is compared with the path.
type PathMatchType string

// Path match types.
const (
	// Exact requires the path to equal the value.
	Exact PathMatchType = "Exact"
	// PathPrefix requires the path to start with the value at a '/'
	// boundary ("/v2" matches "/v2" and "/v2/x", not "/v2x").
	PathPrefix PathMatchType = "PathPrefix"
	// RegularExpression requires the path to fit an RE2 expression.
	RegularExpression PathMatchType = "RegularExpression"
)

// PathMatch matches the request path.
type PathMatch struct {
	// Value is the path, prefix or expression, per Type. Exact and prefix
	// values are absolute paths.
	Value string `json:"value"`
	// Type is Exact, PathPrefix or RegularExpression.
	Type PathMatchType `json:"type"`
}

// Method is an HTTP method name in upper case.
type Method string

// methods lists the methods a Match may name.
var methods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// QueryParamsMatchType says how a query parameter's value is compared.
type QueryParamsMatchType string

// Query parameter match types.
const (
	// ExactQueryMatch requires the parameter to equal the value.
	ExactQueryMatch QueryParamsMatchType = "Exact"
	// RegularExpressionQueryMatch requires the parameter to fit an RE2
	// expression.
	RegularExpressionQueryMatch QueryParamsMatchType = "RegularExpression"
)

// QueryParamsMatch matches one query parameter.
type QueryParamsMatch struct {
	// Type is Exact or RegularExpression.
	Type QueryParamsMatchType `json:"type"`
	// Name is the parameter name; each name may appear once per match.
	Name string `json:"name"`
	// Value is the value or expression to compare with.
	Value string `json:"value"`
}

// HeaderMatchType says how a header is compared.
type HeaderMatchType string

// Header match types.
const (
	// HeaderMatchExact requires the header to equal the value (the default).
	HeaderMatchExact HeaderMatchType = "Exact"
	// HeaderMatchPresent requires the header to be present, any value.
	HeaderMatchPresent HeaderMatchType = "Present"
	// HeaderMatchRegularExpression requires the header to fit an RE2
	// expression.
	HeaderMatchRegularExpression HeaderMatchType = "RegularExpression"
	// HeaderMatchAbsent requires the header to be missing.
	HeaderMatchAbsent HeaderMatchType = "Absent"
	// HeaderMatchPrefix requires the header to start with the value.
	HeaderMatchPrefix HeaderMatchType = "Prefix"
)

// HeaderMatch matches one request header.
type HeaderMatch struct {
	// Type is how to compare; absent means Exact.
	Type *HeaderMatchType `json:"type,omitempty"`
	// Name is the header name in lower case.
	Name string `json:"name"`
	// Value is the value, prefix or expression; it must be empty for
	// Present and Absent.
	Value string `json:"value,omitempty"`
}

// RuleConf is what a rule does with the requests it matches.
type RuleConf struct {
	// Filters change the request or the response, or answer it directly.
	Filters *[]Filter `json:"filters,omitempty"`
	// BackendRefs are the destinations requests are sent to, split by
	// weight; absent means the to[] destination itself.
	BackendRefs *[]common.BackendRef `json:"backendRefs,omitempty"`
}

// FilterType names a filter.
type FilterType string

// Filter types; each needs the field of the same name in Filter.
const (
	RequestHeaderModifierType  FilterType = "RequestHeaderModifier"
	ResponseHeaderModifierType FilterType = "ResponseHeaderModifier"
	RequestRedirectType        FilterType = "RequestRedirect"
	URLRewriteType             FilterType = "URLRewrite"
	RequestMirrorType          FilterType = "RequestMirror"
)

// Filter is one request or response modification. Type says which of the
// other fields holds its settings.
type Filter struct {
	// Type names the filter.
	Type FilterType `json:"type"`
	// RequestHeaderModifier sets, adds or removes request headers.
	RequestHeaderModifier *HeaderModifier `json:"requestHeaderModifier,omitempty"`
	// ResponseHeaderModifier sets, adds or removes response headers.
	ResponseHeaderModifier *HeaderModifier `json:"responseHeaderModifier,omitempty"`
	// RequestRedirect answers with a redirect instead of forwarding.
	RequestRedirect *RequestRedirect `json:"requestRedirect,omitempty"`
	// URLRewrite changes the host or path before forwarding.
	URLRewrite *URLRewrite `json:"urlRewrite,omitempty"`
	// RequestMirror sends a copy of requests to another service.
	RequestMirror *RequestMirror `json:"requestMirror,omitempty"`
}

// HeaderKeyValue is a header name and value.
type HeaderKeyValue struct {
	// Name is the header name in lower case.
	Name string `json:"name"`
	// Value is the header value; several values are joined with commas.
	Value string `json:"value"`
}

// HeaderModifier changes headers. A header name may appear in only one of
// its lists, once.
type HeaderModifier struct {
	// Set replaces headers (or adds them when missing).
	Set []HeaderKeyValue `json:"set,omitempty"`
	// Add appends values to headers.
	Add []HeaderKeyValue `json:"add,omitempty"`
	// Remove deletes headers by name.
	Remove []string `json:"remove,omitempty"`
}

// RequestRedirect answers a request with a redirect built from the request
// and these overrides.
type RequestRedirect struct {
	// Scheme of the Location header: http or https.
	Scheme *string `json:"scheme,omitempty"`
	// Hostname of the Location header; an IP address is not allowed.
	Hostname *string `json:"hostname,omitempty"`
	// Path rewrites the path of the Location header.
	Path *PathRewrite `json:"path,omitempty"`
	// Port of the Location header.
	Port *uint32 `json:"port,omitempty"`
	// StatusCode of the redirect: 301, 302 (the default), 303, 307 or 308.
	StatusCode *int `json:"statusCode,omitempty"`
}

// PathRewriteType says how a path is rewritten.
type PathRewriteType string

// Path rewrite types.
const (
	// ReplaceFullPathType replaces the whole path with ReplaceFullPath.
	ReplaceFullPathType PathRewriteType = "ReplaceFullPath"
	// ReplacePrefixMatchType replaces the matched prefix with
	// ReplacePrefixMatch; the rule's matches must all be path prefixes.
	ReplacePrefixMatchType PathRewriteType = "ReplacePrefixMatch"
)

// PathRewrite rewrites a request path.
type PathRewrite struct {
	// Type is ReplaceFullPath or ReplacePrefixMatch.
	Type PathRewriteType `json:"type"`
	// ReplaceFullPath is the new path for ReplaceFullPath.
	ReplaceFullPath *string `json:"replaceFullPath,omitempty"`
	// ReplacePrefixMatch replaces the matched prefix for ReplacePrefixMatch.
	ReplacePrefixMatch *string `json:"replacePrefixMatch,omitempty"`
}

// URLRewrite changes a request before it is forwarded.
type URLRewrite struct {
	// Hostname replaces the Host header; an IP address is not allowed.
	Hostname *string `json:"hostname,omitempty"`
	// Path rewrites the path.
	Path *PathRewrite `json:"path,omitempty"`
	// HostToBackendHostname sets the Host header to the chosen backend's
	// host name; only for MeshGateway routes, and not with Hostname.
	HostToBackendHostname *bool `json:"hostToBackendHostname,omitempty"`
}

// RequestMirror copies requests to another service; replies to the copies
// are dropped.
type RequestMirror struct {
	// Percentage of requests to copy, 0-100, as an integer or a decimal
	// string; absent means all.
	Percentage *common.IntOrString `json:"percentage,omitempty"`
	// BackendRef is the service that receives the copies.
	BackendRef common.BackendRef `json:"backendRef"`
}
