package meshloadbalancingstrategy

import (
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	topKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
		common.MeshServiceSubset, common.Dataplane,
	}
	toKinds = []common.TargetRefKind{
		common.Mesh, common.MeshService, common.MeshExternalService,
		common.MeshMultiZoneService, common.MeshHTTPRoute,
	}
)

// Limits of the hashing load balancers.
const (
	maxRingSize      = 8000000
	maxMaglevTable   = 5000011
	minLeastRequests = 2
)

// Validate checks the spec against Kuma 2.14's MeshLoadBalancingStrategy
// rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, false, topKinds...)
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: toKinds})
		validateConf(&errs, p.Field("default"), to.Default, to.TargetRef.Kind)
	}
	return errs.Err()
}

const routeOnlyHash = "is not allowed when targetRef.kind is MeshHTTPRoute, only hashPolicies is supported"

func validateConf(errs *validate.Errors, p validate.Path, c Conf, kind common.TargetRefKind) {
	validateHashPolicies(errs, p.Field("hashPolicies"), c.HashPolicies)
	if kind == common.MeshHTTPRoute {
		if c.LoadBalancer != nil {
			errs.Add(p.Field("loadBalancer"), routeOnlyHash)
		}
		if c.LocalityAwareness != nil {
			errs.Add(p.Field("localityAwareness"), routeOnlyHash)
		}
		return
	}
	if lb := c.LoadBalancer; lb != nil {
		validateLoadBalancer(errs, p.Field("loadBalancer"), lb)
	}
	if la := c.LocalityAwareness; la != nil {
		lp := p.Field("localityAwareness")
		if lz := la.LocalZone; lz != nil {
			validateLocalZone(errs, lp.Field("localZone"), lz)
		}
		if cz := la.CrossZone; cz != nil {
			validateCrossZone(errs, lp.Field("crossZone"), cz)
		}
	}
}

func validateLoadBalancer(errs *validate.Errors, p validate.Path, lb *LoadBalancer) {
	tp := p.Field("type")
	if lb.Type == "" {
		errs.Add(tp, "must be defined")
	} else {
		validate.Enum(errs, tp, string(lb.Type), string(RoundRobinType), string(LeastRequestType), string(RingHashType), string(RandomType), string(MaglevType))
	}
	if lr := lb.LeastRequest; lr != nil {
		lp := p.Field("leastRequest")
		if lr.ChoiceCount != nil && *lr.ChoiceCount < minLeastRequests {
			errs.Addf(lp.Field("choiceCount"), "must be at least %d", minLeastRequests)
		}
		if b := common.ValidateIntOrString(errs, lp.Field("activeRequestBias"), lr.ActiveRequestBias); b != nil && b.Sign() < 0 {
			errs.Add(lp.Field("activeRequestBias"), "must not be negative")
		}
	}
	if rh := lb.RingHash; rh != nil {
		rp := p.Field("ringHash")
		if rh.HashFunction != nil {
			validate.Enum(errs, rp.Field("hashFunction"), string(*rh.HashFunction), string(XXHashType), string(MurmurHash2Type))
		}
		validateRange(errs, rp.Field("minRingSize"), rh.MinRingSize, maxRingSize)
		validateRange(errs, rp.Field("maxRingSize"), rh.MaxRingSize, maxRingSize)
		if rh.MinRingSize != nil && rh.MaxRingSize != nil && *rh.MinRingSize > *rh.MaxRingSize {
			errs.Add(rp.Field("minRingSize"), "must not be greater than maxRingSize")
		}
		validateHashPolicies(errs, rp.Field("hashPolicies"), rh.HashPolicies)
	}
	if m := lb.Maglev; m != nil {
		mp := p.Field("maglev")
		validateRange(errs, mp.Field("tableSize"), m.TableSize, maxMaglevTable)
		if m.TableSize != nil && *m.TableSize > 0 && *m.TableSize <= maxMaglevTable && !isPrime(*m.TableSize) {
			errs.Add(mp.Field("tableSize"), "must be a prime number")
		}
		validateHashPolicies(errs, mp.Field("hashPolicies"), m.HashPolicies)
	}
}

func validateRange(errs *validate.Errors, p validate.Path, v *uint32, max uint32) {
	if v != nil && (*v < 1 || *v > max) {
		errs.Addf(p, "must be in the range [1, %d]", max)
	}
}

func isPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	for d := uint32(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func validateHashPolicies(errs *validate.Errors, p validate.Path, ps []HashPolicy) {
	for i, hp := range ps {
		ip := p.Index(i)
		switch hp.Type {
		case HeaderType:
			if hp.Header == nil {
				errs.Add(ip.Field("header"), "must be defined")
			} else {
				validate.Required(errs, ip.Field("header").Field("name"), hp.Header.Name)
			}
		case CookieType:
			switch {
			case hp.Cookie == nil:
				errs.Add(ip.Field("cookie"), "must be defined")
			default:
				validate.Required(errs, ip.Field("cookie").Field("name"), hp.Cookie.Name)
				common.ValidateDuration(errs, ip.Field("cookie").Field("ttl"), hp.Cookie.TTL)
				if hp.Cookie.Path != nil && !strings.HasPrefix(*hp.Cookie.Path, "/") {
					errs.Add(ip.Field("cookie").Field("path"), "must be an absolute path")
				}
			}
		case ConnectionType:
			if hp.Connection == nil {
				errs.Add(ip.Field("connection"), "must be defined")
			}
		case QueryParameterType:
			if hp.QueryParameter == nil {
				errs.Add(ip.Field("queryParameter"), "must be defined")
			} else {
				validate.Required(errs, ip.Field("queryParameter").Field("name"), hp.QueryParameter.Name)
			}
		case FilterStateType:
			if hp.FilterState == nil {
				errs.Add(ip.Field("filterState"), "must be defined")
			} else {
				validate.Required(errs, ip.Field("filterState").Field("key"), hp.FilterState.Key)
			}
		default:
			errs.Addf(ip.Field("type"), "unknown value %q: must be one of Header, Cookie, Connection, QueryParameter, FilterState", hp.Type)
		}
	}
}

func validateLocalZone(errs *validate.Errors, p validate.Path, lz *LocalZone) {
	weighted := 0
	for i, tag := range lz.AffinityTags {
		tp := p.Field("affinityTags").Index(i)
		if tag.Key == "" {
			errs.Add(tp.Field("key"), "must not be empty")
		}
		if tag.Weight != nil {
			weighted++
			common.ValidatePositiveUint32(errs, tp.Field("weight"), tag.Weight)
		}
	}
	if weighted > 0 && weighted != len(lz.AffinityTags) {
		errs.Add(p.Field("affinityTags"), "all or none affinity tags should have weight")
	}
}

func validateCrossZone(errs *validate.Errors, p validate.Path, cz *CrossZone) {
	for i, f := range cz.Failover {
		fp := p.Field("failover").Index(i)
		if f.From != nil {
			zp := fp.Field("from").Field("zones")
			if len(f.From.Zones) == 0 {
				errs.Add(zp, "must not be empty")
			}
			for j, z := range f.From.Zones {
				if z == "" {
					errs.Add(zp.Index(j), "must not be empty")
				}
			}
		}
		zp := fp.Field("to").Field("zones")
		switch f.To.Type {
		case Any, None:
			if len(f.To.Zones) > 0 {
				errs.Addf(zp, "must be empty when type is %s", f.To.Type)
			}
		case AnyExcept, Only:
			if len(f.To.Zones) == 0 {
				errs.Addf(zp, "must not be empty when type is %s", f.To.Type)
			}
		case "":
			errs.Add(fp.Field("to").Field("type"), "must be defined")
		default:
			errs.Addf(fp.Field("to").Field("type"), "unknown value %q: must be one of Any, Only, AnyExcept, None", f.To.Type)
		}
	}
	if ft := cz.FailoverThreshold; ft != nil {
		pp := p.Field("failoverThreshold").Field("percentage")
		if ft.Percentage == nil {
			errs.Add(pp, "must be defined")
		} else {
			common.ValidatePercentage(errs, pp, ft.Percentage, true)
		}
	}
}
