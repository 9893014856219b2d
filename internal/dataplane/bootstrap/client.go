package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"

	// Types the bootstrap's Any fields may hold (the ADS cluster's TLS and
	// HTTP/2 options, the metrics-service sink); protojson needs them
	// registered to decode.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// maxResponse bounds the bootstrap answer.
const maxResponse = 4 << 20

// Request is the body of POST /bootstrap (docs/xds-contract.md).
type Request struct {
	Mesh              string  `json:"mesh"`
	Name              string  `json:"name"`
	ProxyType         string  `json:"proxyType"`
	DataplaneResource string  `json:"dataplaneResource"`
	DataplaneToken    string  `json:"dataplaneToken"`
	AdminAddress      string  `json:"adminAddress,omitempty"`
	XDSMode           string  `json:"xdsMode,omitempty"`
	Version           Version `json:"version"`
}

// Version describes the proxy's build.
type Version struct {
	TrellisDp BuildVersion `json:"trellisDp"`
}

// BuildVersion is one component's version.
type BuildVersion struct {
	Version string `json:"version"`
}

// Error is a non-200 answer, decoded from Kuma's std-errors JSON when the
// body is JSON.
type Error struct {
	Status            int                `json:"status"`
	Title             string             `json:"title"`
	Detail            string             `json:"detail"`
	InvalidParameters []InvalidParameter `json:"invalid_parameters"`
}

// InvalidParameter is one field violation of an Error.
type InvalidParameter struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error renders the status, the detail and one "  * field: reason" line
// per violation, so the user sees which field of the Dataplane is wrong.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the control plane refused the bootstrap request: %d %s", e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	for _, p := range e.InvalidParameters {
		b.WriteString("\n  * ")
		if p.Field != "" {
			b.WriteString(p.Field + ": ")
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

// Retryable reports whether a Fetch error may go away by itself: the
// control plane was unreachable or answered 5xx. Validation errors (4xx)
// are not.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500
	}
	return errors.Is(err, ErrUnreachable)
}

// ErrUnreachable is wrapped by Fetch errors where no HTTP answer came back.
var ErrUnreachable = errors.New("control plane unreachable")

// Fetch posts req to baseURL + "/bootstrap" and decodes the answer.
// httpClient carries the TLS configuration.
func Fetch(ctx context.Context, httpClient *http.Client, baseURL string, req *Request) (*bootstrapv3.Bootstrap, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the bootstrap request: %w", err)
	}
	url := strings.TrimRight(baseURL, "/") + "/bootstrap"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bootstrap request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := httpClient.Do(hreq)
	if err != nil {
		if isCertificateError(err) {
			// Retrying will not fix trust: say so at once.
			return nil, fmt.Errorf("POST %s: the control plane's certificate is not trusted (check --ca-cert-file): %w", url, err)
		}
		return nil, fmt.Errorf("POST %s: %w: %w", url, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the answer: %w: %w", url, ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp.StatusCode, data)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decoding the bootstrap from %s: %w", url, err)
	}
	return &b, nil
}

// isCertificateError reports whether err is a failure to verify the
// server's certificate.
func isCertificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// decodeError builds the Error of a non-200 answer.
func decodeError(status int, body []byte) error {
	e := &Error{}
	if json.Unmarshal(body, e) != nil || (e.Detail == "" && e.Title == "" && len(e.InvalidParameters) == 0) {
		e = &Error{Detail: strings.TrimSpace(string(truncate(body, 512)))}
	}
	e.Status = status
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Settings are what trellis-dp takes from a bootstrap.
type Settings struct {
	// Node goes on the xDS requests.
	Node *corev3.Node
	// APIType is ads_config.api_type: GRPC or DELTA_GRPC.
	APIType corev3.ApiConfigSource_ApiType
	// MetricsSink, when set, streams the proxy's metrics to the control
	// plane (metrics.go); SkippedSinks says which stats sinks are not run.
	MetricsSink  *MetricsSink
	SkippedSinks []string
}

// SettingsOf checks a bootstrap for what trellis-dp needs and returns it.
func SettingsOf(b *bootstrapv3.Bootstrap) (*Settings, error) {
	if b.GetNode().GetId() == "" {
		return nil, errors.New("the bootstrap has no node.id")
	}
	ads := b.GetDynamicResources().GetAdsConfig()
	if ads == nil {
		return nil, errors.New("the bootstrap has no dynamic_resources.ads_config")
	}
	switch t := ads.GetApiType(); t {
	case corev3.ApiConfigSource_GRPC, corev3.ApiConfigSource_DELTA_GRPC:
		sink, skipped := metricsSinkOf(b)
		return &Settings{Node: b.GetNode(), APIType: t, MetricsSink: sink, SkippedSinks: skipped}, nil
	default:
		return nil, fmt.Errorf("dynamic_resources.ads_config.api_type %s is not supported (want GRPC or DELTA_GRPC)", t)
	}
}
