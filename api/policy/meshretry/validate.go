package meshretry

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topKinds are the top-level targetRef kinds Kuma 2.14 accepts on Universal.
var topKinds = []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
	common.MeshServiceSubset, common.MeshHTTPRoute, common.Dataplane,
}

// Validate checks the spec against Kuma 2.14's MeshRetry rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, false, topKinds...)
	if len(s.To) == 0 {
		errs.Add(root.Field("to"), "needs at least one item")
	}
	toKinds := []common.TargetRefKind{common.Mesh, common.MeshService, common.MeshExternalService, common.MeshMultiZoneService}
	if top := common.TopKind(s.TargetRef); top == common.MeshGateway || top == common.MeshHTTPRoute {
		toKinds = []common.TargetRefKind{common.Mesh, common.MeshExternalService}
	}
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: toKinds})
		validateConf(&errs, p.Field("default"), to.Default)
	}
	return errs.Err()
}

const mustNotBeEmpty = "must not be empty"

func validateConf(errs *validate.Errors, path validate.Path, c Conf) {
	if c.TCP == nil && c.HTTP == nil && c.GRPC == nil {
		errs.Add(path, "at least one of the 'tcp', 'http', 'grpc' must be specified")
		return
	}
	if t := c.TCP; t != nil {
		switch {
		case t.MaxConnectAttempt == nil:
			errs.Add(path.Field("tcp"), mustNotBeEmpty)
		case *t.MaxConnectAttempt == 0:
			errs.Add(path.Field("tcp").Field("maxConnectAttempt"), "must be greater than 0")
		}
	}
	if h := c.HTTP; h != nil {
		validateHTTP(errs, path.Field("http"), h)
	}
	if g := c.GRPC; g != nil {
		p := path.Field("grpc")
		if g.NumRetries == nil && g.PerTryTimeout == nil && g.BackOff == nil && g.RetryOn == nil && g.RateLimitedBackOff == nil {
			errs.Add(p, mustNotBeEmpty)
		}
		common.ValidateDuration(errs, p.Field("perTryTimeout"), g.PerTryTimeout)
		validateBackOff(errs, p.Field("backOff"), g.BackOff)
		validateRateLimitedBackOff(errs, p.Field("rateLimitedBackOff"), g.RateLimitedBackOff)
		for i, on := range g.RetryOn {
			validate.Enum(errs, p.Field("retryOn").Index(i), string(on),
				string(Canceled), string(DeadlineExceeded), string(Internal), string(ResourceExhausted), string(Unavailable))
		}
	}
}

func validateHTTP(errs *validate.Errors, p validate.Path, h *HTTP) {
	if h.NumRetries == nil && h.PerTryTimeout == nil && h.BackOff == nil && h.RetryOn == nil &&
		h.RetriableRequestHeaders == nil && h.RetriableResponseHeaders == nil &&
		h.RateLimitedBackOff == nil && h.HostSelection == nil && h.HostSelectionMaxAttempts == nil {
		errs.Add(p, mustNotBeEmpty)
	}
	common.ValidateDuration(errs, p.Field("perTryTimeout"), h.PerTryTimeout)
	validateBackOff(errs, p.Field("backOff"), h.BackOff)
	validateRateLimitedBackOff(errs, p.Field("rateLimitedBackOff"), h.RateLimitedBackOff)
	for i, on := range h.RetryOn {
		if !validHTTPRetryOn(on) {
			errs.Addf(p.Field("retryOn").Index(i), "unknown item %q: must be an HTTP status code or one of 5xx, GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream, Http3PostConnectFailure, HttpMethodConnect, HttpMethodDelete, HttpMethodGet, HttpMethodHead, HttpMethodOptions, HttpMethodPatch, HttpMethodPost, HttpMethodPut, HttpMethodTrace", on)
		}
	}
	validateHeaderMatches(errs, p.Field("retriableResponseHeaders"), h.RetriableResponseHeaders)
	validateHeaderMatches(errs, p.Field("retriableRequestHeaders"), h.RetriableRequestHeaders)
	prioritySet := false
	for i, pr := range h.HostSelection {
		pp := p.Field("hostSelection").Index(i)
		switch pr.PredicateType {
		case OmitPreviousHosts:
		case OmitHostsWithTags:
			if pr.Tags == nil {
				errs.Add(pp.Field("tags"), "must be defined")
			}
		case OmitPreviousPriorities:
			if prioritySet {
				errs.Add(pp.Field("predicate"), "OmitPreviousPriorities must only be specified once")
			}
			prioritySet = true
			if pr.UpdateFrequency == nil || *pr.UpdateFrequency <= 0 {
				errs.Add(pp.Field("updateFrequency"), "must be defined and greater than zero")
			}
		default:
			errs.Addf(pp.Field("predicate"), "unknown predicate type %q: must be one of OmitPreviousHosts, OmitHostsWithTags, OmitPreviousPriorities", pr.PredicateType)
		}
	}
}

func validHTTPRetryOn(on HTTPRetryOn) bool {
	switch on {
	case All5xx, "5XX", GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream,
		Http3PostConnectFailure, HttpMethodConnect, HttpMethodDelete, HttpMethodGet, HttpMethodHead,
		HttpMethodOptions, HttpMethodPatch, HttpMethodPost, HttpMethodPut, HttpMethodTrace:
		return true
	}
	code, err := strconv.Atoi(string(on))
	return err == nil && http.StatusText(code) != ""
}

func validateBackOff(errs *validate.Errors, p validate.Path, b *BackOff) {
	if b == nil {
		return
	}
	if b.BaseInterval == nil && b.MaxInterval == nil {
		errs.Add(p, mustNotBeEmpty)
	}
	common.ValidatePositiveDuration(errs, p.Field("baseInterval"), b.BaseInterval)
	common.ValidateDuration(errs, p.Field("maxInterval"), b.MaxInterval)
}

func validateRateLimitedBackOff(errs *validate.Errors, p validate.Path, r *RateLimitedBackOff) {
	if r == nil {
		return
	}
	common.ValidatePositiveDuration(errs, p.Field("maxInterval"), r.MaxInterval)
	if r.ResetHeaders == nil {
		errs.Add(p.Field("resetHeaders"), "must be defined")
	}
	for i, h := range r.ResetHeaders {
		hp := p.Field("resetHeaders").Index(i)
		validateHeaderName(errs, hp.Field("name"), h.Name)
		validate.Enum(errs, hp.Field("format"), string(h.Format), string(Seconds), string(UnixTimestamp))
	}
}

func validateHeaderMatches(errs *validate.Errors, p validate.Path, ms []HeaderMatch) {
	for i, m := range ms {
		mp := p.Index(i)
		validateHeaderName(errs, mp.Field("name"), m.Name)
		if m.Type != nil {
			validate.Enum(errs, mp.Field("type"), string(*m.Type), string(HeaderMatchExact), string(HeaderMatchPresent),
				string(HeaderMatchRegularExpression), string(HeaderMatchAbsent), string(HeaderMatchPrefix))
			if *m.Type == HeaderMatchRegularExpression {
				if _, err := regexp.Compile(m.Value); err != nil {
					errs.Addf(mp.Field("value"), "must be a valid regular expression: %v", err)
				}
			}
		}
	}
}

// headerNameRE is Kuma's rule for header names: lower-case RFC 7230 tokens.
var headerNameRE = regexp.MustCompile("^[a-z0-9!#$%&'*+\\-.^_`|~]+$")

func validateHeaderName(errs *validate.Errors, p validate.Path, name string) {
	switch {
	case name == "":
		errs.Add(p, "must be defined")
	case len(name) > 256 || !headerNameRE.MatchString(name):
		errs.Add(p, "must be a lower-case HTTP header name of at most 256 characters")
	}
}
