package apiclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// SetToken makes the client send token as "Authorization: Bearer <token>"
// (a user token; see IssueUserToken). An empty token sends none. Call it
// before sharing the client between goroutines.
func (c *Client) SetToken(token string) {
	token = strings.TrimSpace(token)
	if token == "" {
		c.header.Del("Authorization")
		return
	}
	c.header.Set("Authorization", "Bearer "+token)
}

// TLSConfig returns the TLS settings for reaching an HTTPS API: with
// caCertFile, its certificates are the only trusted roots (the control
// plane's generated <dataDir>/certs/api-server.crt, say); with skipVerify,
// the server's certificate is not checked at all. With neither it returns
// nil: the system's roots apply.
func TLSConfig(caCertFile string, skipVerify bool) (*tls.Config, error) {
	if caCertFile == "" && !skipVerify {
		return nil, nil
	}
	// InsecureSkipVerify only when the user asked for it (--skip-verify).
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	if caCertFile != "" {
		pem, err := os.ReadFile(caCertFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA certificate file %s holds no PEM certificate", caCertFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// NewHTTPClient returns an HTTP client with a per-request timeout and, when
// tlsCfg is not nil, those TLS settings.
func NewHTTPClient(timeout time.Duration, tlsCfg *tls.Config) *http.Client {
	hc := &http.Client{Timeout: timeout}
	if tlsCfg != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		hc.Transport = tr
	}
	return hc
}

// IssueUserToken asks the control plane (POST /tokens/user; admins only)
// for a token for user name in groups, valid for validFor.
func (c *Client) IssueUserToken(ctx context.Context, name string, groups []string, validFor time.Duration) (string, error) {
	if name == "" {
		return "", errors.New("apiclient: IssueUserToken needs a user name")
	}
	if groups == nil {
		groups = []string{}
	}
	body := map[string]any{"name": name, "groups": groups, "validFor": validFor.String()}
	var raw []byte
	if _, err := c.Do(ctx, http.MethodPost, "/tokens/user", nil, body, &raw); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}
