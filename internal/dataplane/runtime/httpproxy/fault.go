package httpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
)

// FaultFilterName is the name of the fault injection HTTP filter.
const FaultFilterName = "envoy.filters.http.fault"

const faultTypeURL = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

// bodyFaultAbort is the body of a response aborted by the fault filter.
const bodyFaultAbort = "fault filter abort"

// percent is a compiled FractionalPercent: numerator out of denominator.
type percent struct{ num, den uint32 }

func compilePercent(p *typev3.FractionalPercent) percent {
	den := uint32(100)
	switch p.GetDenominator() {
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10_000
	case typev3.FractionalPercent_MILLION:
		den = 1_000_000
	}
	return percent{num: min(p.GetNumerator(), den), den: den}
}

// hit draws whether this request falls in the percentage.
func (p percent) hit() bool {
	switch {
	case p.num == 0:
		return false
	case p.num >= p.den:
		return true
	}
	return rand.Uint32N(p.den) < p.num
}

// faultFilter is a compiled HTTPFault: abort, delay and response rate
// limit, each for a percentage of the requests.
type faultFilter struct {
	abortStatus  int // 0: no abort
	abortPercent percent
	delay        time.Duration // 0: no delay
	delayPercent percent
	limitKbps    uint64 // 0: no response rate limit
	limitPercent percent
}

func compileFault(f *faultv3.HTTPFault) (*faultFilter, error) {
	ff := &faultFilter{}
	if a := f.GetAbort(); a != nil {
		hs, ok := a.GetErrorType().(*faultv3.FaultAbort_HttpStatus)
		if !ok {
			return nil, errors.New("abort: only http_status is supported by trellis-dp")
		}
		if hs.HttpStatus < 200 || hs.HttpStatus > 599 {
			return nil, fmt.Errorf("abort.http_status %d is out of range 200-599", hs.HttpStatus)
		}
		ff.abortStatus, ff.abortPercent = int(hs.HttpStatus), compilePercent(a.GetPercentage())
	}
	if d := f.GetDelay(); d != nil {
		fd, ok := d.GetFaultDelaySecifier().(*faultcommonv3.FaultDelay_FixedDelay)
		if !ok {
			return nil, errors.New("delay: only fixed_delay is supported by trellis-dp")
		}
		var err error
		if ff.delay, err = xdsutil.Duration(fd.FixedDelay, 0); err != nil {
			return nil, fmt.Errorf("delay.fixed_delay: %w", err)
		}
		ff.delayPercent = compilePercent(d.GetPercentage())
	}
	if rl := f.GetResponseRateLimit(); rl != nil {
		fl, ok := rl.GetLimitType().(*faultcommonv3.FaultRateLimit_FixedLimit_)
		if !ok {
			return nil, errors.New("response_rate_limit: only fixed_limit is supported by trellis-dp")
		}
		if fl.FixedLimit.GetLimitKbps() == 0 {
			return nil, errors.New("response_rate_limit.fixed_limit.limit_kbps must be positive")
		}
		ff.limitKbps, ff.limitPercent = fl.FixedLimit.GetLimitKbps(), compilePercent(rl.GetPercentage())
	}
	return ff, nil
}

// apply draws the faults of one request into v: a delay first, then an
// abort, and a response rate limit for what is forwarded.
func (f *faultFilter) apply(v *verdict) {
	if f.delay > 0 && f.delayPercent.hit() {
		v.delay += f.delay
	}
	if f.abortStatus != 0 && f.abortPercent.hit() {
		v.status, v.body = f.abortStatus, bodyFaultAbort
		return
	}
	if f.limitKbps > 0 && f.limitPercent.hit() && (v.limitKbps == 0 || f.limitKbps < v.limitKbps) {
		v.limitKbps = f.limitKbps
	}
}
