package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpsClient trusts only caFile.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// authGet sends GET url with an optional bearer token and returns the status
// and body.
func authGet(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// trellisctl runs the CLI with only env (plus a private HOME and PATH).
func trellisctl(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "trellisctl"), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), errOut.String(), err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("trellisctl %s did not finish in 30 s", strings.Join(args, " "))
		return "", "", nil
	}
}

func TestAPIOverHTTPSWithUserTokens(t *testing.T) {
	cp := startCP(t, nil)
	caFile := filepath.Join(cp.DataDir, "certs", "api-server.crt")
	tokenFile := filepath.Join(cp.DataDir, "admin-user-token")
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v (mode %v); want it with mode 0600", err, fi.Mode())
	}
	raw, _ := os.ReadFile(tokenFile)
	admin := strings.TrimSpace(string(raw))
	if !strings.Contains(cp.log.String(), tokenFile) {
		t.Errorf("the log does not point at %s:\n%s", tokenFile, cp.log)
	}
	httpsURL := "https://" + cp.HTTPSAddr

	// The HTTPS API answers with the generated certificate, which the CA file verifies.
	c := httpsClient(t, caFile)
	if status, body := authGet(t, c, httpsURL+"/meshes/default", admin); status != 200 || !strings.Contains(body, `"name": "default"`) && !strings.Contains(body, `"name":"default"`) {
		t.Fatalf("GET /meshes/default over HTTPS with the admin token: %d %s", status, body)
	}
	if status, _ := authGet(t, c, httpsURL+"/ready", ""); status != 200 {
		t.Fatalf("GET /ready over HTTPS: %d", status)
	}
	var certErr *tls.CertificateVerificationError
	if _, err := http.Get(httpsURL + "/ready"); !errors.As(err, &certErr) {
		t.Fatalf("without the CA: %v, want a certificate verification error", err)
	}
	// A token, when sent, is checked even from localhost.
	if status, body := authGet(t, c, httpsURL+"/meshes", "not-a-token"); status != 401 || !strings.Contains(body, "invalid user token") {
		t.Fatalf("a bad token: %d %s", status, body)
	}

	// trellisctl over HTTPS with the CA file and the token.
	out, errOut, err := trellisctl(t, nil, "--api-url", httpsURL, "--ca-cert-file", caFile, "--token", admin, "get", "meshes")
	if err != nil || !strings.Contains(out, "default") {
		t.Fatalf("trellisctl get meshes over HTTPS: %v\n%s%s", err, out, errOut)
	}
	// It issues a user token; the new token works.
	out, errOut, err = trellisctl(t, nil, "--api-url", httpsURL, "--ca-cert-file", caFile, "--token-file", tokenFile,
		"generate", "user-token", "--name", "ops@example.com", "--group", "mesh-system:admin", "--valid-for", "1h")
	if err != nil {
		t.Fatalf("generate user-token: %v\n%s", err, errOut)
	}
	ops := strings.TrimSpace(out)
	if status, _ := authGet(t, c, httpsURL+"/meshes", ops); status != 200 {
		t.Fatalf("the generated token: %d", status)
	}
	// The environment works as well as flags.
	env := []string{"TRELLIS_API_URL=" + httpsURL, "TRELLIS_API_TOKEN=" + ops, "TRELLIS_API_CA_CERT_FILE=" + caFile}
	if out, errOut, err := trellisctl(t, env, "get", "meshes"); err != nil || !strings.Contains(out, "default") {
		t.Fatalf("trellisctl with $TRELLIS_API_*: %v\n%s%s", err, out, errOut)
	}
	// Without the CA, trellisctl says what to do.
	if _, errOut, err := trellisctl(t, nil, "--api-url", httpsURL, "--token", admin, "get", "meshes"); err == nil || !strings.Contains(errOut, "--ca-cert-file") {
		t.Fatalf("without the CA: %v\n%s", err, errOut)
	}

	// Both listeners stop within the shutdown budget; after a restart the
	// admin token is the same and still valid (the signing key is stored).
	if d := cp.Stop(); d > 5*time.Second {
		t.Fatalf("stopping took %v", d)
	}
	cp.start()
	again, _ := os.ReadFile(tokenFile)
	if string(again) != string(raw) {
		t.Fatal("the admin token file changed across a restart")
	}
	if status, _ := authGet(t, c, httpsURL+"/meshes", admin); status != 200 {
		t.Fatalf("the admin token after a restart: %d", status)
	}
}

func TestLocalhostIsAdminCanBeTurnedOff(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_API_AUTHN_LOCALHOST_IS_ADMIN": "false"})
	raw, err := os.ReadFile(filepath.Join(cp.DataDir, "admin-user-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(raw))
	c := &http.Client{Timeout: 10 * time.Second}
	if status, body := authGet(t, c, cp.URL+"/meshes", ""); status != 401 || !strings.Contains(body, "localhostIsAdmin is off") {
		t.Fatalf("GET /meshes from localhost without a token: %d %s", status, body)
	}
	if status, _ := authGet(t, c, cp.URL+"/meshes", admin); status != 200 {
		t.Fatalf("GET /meshes with the admin token: %d", status)
	}
	_, errOut, err := cp.ctl("", "get", "meshes")
	if err == nil || !strings.Contains(errOut, "Unauthenticated") || !strings.Contains(errOut, "admin-user-token") {
		t.Fatalf("trellisctl without a token: %v\n%s", err, errOut)
	}
	if out := cp.mustCtl("", "--token", admin, "get", "meshes"); !strings.Contains(out, "default") {
		t.Fatalf("trellisctl with the token:\n%s", out)
	}
}
