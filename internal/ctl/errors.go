package ctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// describeError turns an error into the message printed after "Error: ",
// adding hints where the user can act on them.
func (r *root) describeError(err error) string {
	var te *apiclient.TransportError
	if !errors.As(err, &te) {
		return err.Error() + authHint(err)
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
		return fmt.Sprintf("could not reach the control plane at %s: %s", where, reason) + authHint(err)
	}
}

// authHint tells what to do about a missing or refused token, or an
// HTTPS certificate trellisctl does not trust; empty for other errors.
func authHint(err error) string {
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, apiclient.ErrUnauthenticated):
		return "\nThis control plane wants an admin user token from this client: pass --token or --token-file,\n" +
			"set $" + EnvAPIToken + ", or store one with `trellisctl config control-planes add --auth-type tokens\n" +
			"--auth-conf token=...`. On the control plane's host, <dataDir>/admin-user-token holds one."
	case errors.Is(err, apiclient.ErrForbidden):
		return "\nThe token's user is not in group " + tokens.UserAdminGroup + "; ask an admin for a token\n" +
			"(`trellisctl generate user-token --name NAME --group " + tokens.UserAdminGroup + " --valid-for 24h`)."
	case errors.As(err, &certErr):
		return "\nThe control plane's HTTPS certificate is not trusted: pass --ca-cert-file with its CA (the\n" +
			"generated one is <dataDir>/certs/api-server.crt on the control plane's host), set $" + EnvAPICACertFile + ",\n" +
			"or --skip-verify (insecure)."
	}
	return ""
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
