package ctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AuthTypeTokens is the only authentication type: a user token sent as a
// bearer token (kumactl's "tokens").
const AuthTypeTokens = "tokens"

// authConfToken is the AuthConf key of the token.
const authConfToken = "token"

// target is the control plane a command calls and how.
type target struct {
	url string
	// from says where url came from, for messages.
	from       string
	token      string
	caCertFile string
	skipVerify bool
}

// resolveTarget picks the control plane: --api-url, then $TRELLIS_API_URL,
// then the config file's current control plane (with its stored
// credentials), then the default. Credentials given on the command line or
// in the environment win over stored ones: --token / --token-file, then
// $TRELLIS_API_TOKEN; --ca-cert-file, then $TRELLIS_API_CA_CERT_FILE;
// --skip-verify.
func (r *root) resolveTarget() (target, error) {
	var t target
	switch {
	case r.apiURL != "":
		t.url, t.from = strings.TrimRight(r.apiURL, "/"), "--api-url"
	case r.opts.Getenv(EnvAPIURL) != "":
		t.url, t.from = strings.TrimRight(r.opts.Getenv(EnvAPIURL), "/"), "$"+EnvAPIURL
	default:
		cfg, path, err := r.loadConfig()
		if err != nil {
			return t, err
		}
		cp := cfg.current()
		if cp == nil || cp.Coordinates.APIServer.URL == "" {
			t.url, t.from = DefaultAPIURL, "default"
			break
		}
		api := cp.Coordinates.APIServer
		t.url, t.from = strings.TrimRight(api.URL, "/"), fmt.Sprintf("control plane %q of %s", cp.Name, path)
		t.caCertFile, t.skipVerify = api.CACertFile, api.SkipVerify
		if t.token, err = storedToken(api); err != nil {
			return t, fmt.Errorf("control plane %q of %s: %w", cp.Name, path, err)
		}
	}
	token, err := r.explicitToken()
	if err != nil {
		return t, err
	}
	if token == "" {
		token = strings.TrimSpace(r.opts.Getenv(EnvAPIToken))
	}
	if token != "" {
		t.token = token
	}
	if r.caCertFile != "" {
		t.caCertFile = r.caCertFile
	} else if v := r.opts.Getenv(EnvAPICACertFile); v != "" {
		t.caCertFile = v
	}
	if r.skipVerify {
		t.skipVerify = true
	}
	return t, nil
}

// explicitToken reads --token or --token-file; empty when neither is set.
func (r *root) explicitToken() (string, error) {
	switch {
	case r.token != "" && r.tokenFile != "":
		return "", errors.New("--token and --token-file are exclusive: pass one")
	case r.token != "":
		return strings.TrimSpace(r.token), nil
	case r.tokenFile != "":
		data, err := os.ReadFile(r.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		token := strings.TrimSpace(string(data))
		if token == "" {
			return "", fmt.Errorf("--token-file %s is empty", r.tokenFile)
		}
		return token, nil
	}
	return "", nil
}

// storedToken returns the token of a control plane of the config file.
func storedToken(api APIServer) (string, error) {
	switch api.AuthType {
	case "":
		return "", nil
	case AuthTypeTokens:
		token := strings.TrimSpace(api.AuthConf[authConfToken])
		if token == "" {
			return "", fmt.Errorf("authType %q needs authConf.token", AuthTypeTokens)
		}
		return token, nil
	default:
		return "", fmt.Errorf("authType %q is not supported: use %q", api.AuthType, AuthTypeTokens)
	}
}

// credentialsToStore builds the credentials `config control-planes add`
// stores: from --auth-type/--auth-conf (kumactl's flags) or --token /
// --token-file, and --ca-cert-file (stored as an absolute path) and
// --skip-verify. The environment is not stored.
func (r *root) credentialsToStore(authType string, authConf map[string]string) (APIServer, error) {
	var api APIServer
	token, err := r.explicitToken()
	if err != nil {
		return api, err
	}
	switch {
	case authType != "" && authType != AuthTypeTokens:
		return api, fmt.Errorf("--auth-type %q is not supported: use %q", authType, AuthTypeTokens)
	case authType == "" && len(authConf) > 0:
		return api, fmt.Errorf("--auth-conf needs --auth-type %s", AuthTypeTokens)
	case authType == AuthTypeTokens && token != "":
		return api, errors.New("--auth-type tokens and --token/--token-file both give a token: pass one")
	case authType == AuthTypeTokens:
		if strings.TrimSpace(authConf[authConfToken]) == "" {
			return api, errors.New("--auth-type tokens needs --auth-conf token=YOUR_TOKEN")
		}
		for k := range authConf {
			if k != authConfToken {
				return api, fmt.Errorf("--auth-conf %s: unknown key for --auth-type tokens (only token)", k)
			}
		}
		api.AuthType, api.AuthConf = AuthTypeTokens, map[string]string{authConfToken: strings.TrimSpace(authConf[authConfToken])}
	case token != "":
		api.AuthType, api.AuthConf = AuthTypeTokens, map[string]string{authConfToken: token}
	}
	if r.caCertFile != "" {
		abs, err := filepath.Abs(r.caCertFile)
		if err != nil {
			return api, fmt.Errorf("--ca-cert-file: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return api, fmt.Errorf("--ca-cert-file: %w", err)
		}
		api.CACertFile = abs
	}
	api.SkipVerify = r.skipVerify
	return api, nil
}
