package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

// describeError turns an error into the message printed after "Error: ",
// adding hints where the user can act on them.
func (r *root) describeError(err error) string {
	var te *apiclient.TransportError
	if !errors.As(err, &te) {
		return err.Error()
	}
	where := r.usedURL
	if where == "" {
		where = te.URL
	}
	reason := transportReason(te)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("could not connect to the control plane at %s: %s\n"+
			"Is it running? Start one with `trellis-cp run`, or point trellisctl at another one with\n"+
			"--api-url, $%s or `trellisctl config control-planes add`.", where, reason, EnvAPIURL)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("the control plane at %s did not answer in time (see --api-timeout): %s", where, reason)
	default:
		return fmt.Sprintf("could not reach the control plane at %s: %s", where, reason)
	}
}

// transportReason says in a few words why a request got no answer.
func transportReason(te *apiclient.TransportError) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(te, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(te, &dnsErr):
		return dnsErr.Error()
	case errors.Is(te, context.DeadlineExceeded), isTimeout(te):
		return "timed out"
	default:
		return te.Err.Error()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
