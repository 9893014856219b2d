package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// waitExit waits for a proxy expected to give up and returns its log.
func (p *proxy) waitExit(within time.Duration) string {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("trellis-dp %s still runs after %s; its log:\n%s", p.name, within, p.log)
	}
	if p.cmd.ProcessState.Success() {
		p.t.Fatalf("trellis-dp %s exited 0; its log:\n%s", p.name, p.log)
	}
	return p.log.String()
}

func wantLog(t *testing.T, who, log string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(log, w) {
			t.Fatalf("%s's log does not say %q:\n%s", who, w, log)
		}
	}
}

// tokenID reads the jti claim of a token (no verification: the test made it).
func tokenID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.ID == "" {
		t.Fatalf("claims %s: %v", payload, err)
	}
	return c.ID
}

// The DP server admits a proxy only with a dataplane token that matches
// its Dataplane; refusals name the reason on both sides; a revoked token
// is refused on the ADS stream too.
func TestDataplaneTokens(t *testing.T) {
	cp := startCP(t, nil)
	app := startHTTPApp(t, "backend-1")
	backend := serviceDP(t, "backend-1", "backend", "http", app.port)

	// A token for another service.
	payments := writeToken(t, cp.mustCtl("", "generate", "dataplane-token", "--tag", "kuma.io/service=payments", "--valid-for", "1h"))
	log := launchDP(t, cp, "backend-1", backend, "--dataplane-token-file", payments).waitExit(20 * time.Second)
	wantLog(t, "trellis-dp", log, "401 Unauthorized", "tag mismatch")
	wantLog(t, "trellis-cp", cp.log.String(), "refusing a bootstrap", "proxy=default/backend-1",
		"the Dataplane has kuma.io/service=backend, the token allows only kuma.io/service=payments")

	// No token at all.
	log = launchDP(t, cp, "backend-1", backend).waitExit(20 * time.Second)
	wantLog(t, "trellis-dp", log, "no token presented", "--dataplane-token-file")

	// The right token: the proxy registers and serves.
	good := cp.mustCtl("", "generate", "dataplane-token", "--name", "backend-1", "--tag", "kuma.io/service=backend", "--valid-for", "1h")
	startDP(t, cp, "backend-1", backend, "--dataplane-token-file", writeToken(t, good))
	out := freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	c := newClient()
	eventually(t, 10*time.Second, "a request through the mesh", func() error {
		got, err := get(c, fmt.Sprintf("http://127.0.0.1:%d/", out))
		if err == nil && got != "backend-1" {
			err = fmt.Errorf("answered by %q", got)
		}
		return err
	})

	// Revoked: when the control plane comes back, the proxy's stream is
	// refused (it keeps its last config meanwhile).
	secret := fmt.Sprintf("type: Secret\nmesh: default\nname: dataplane-token-revocations-default\ndata: %s\n",
		base64.StdEncoding.EncodeToString([]byte(tokenID(t, good)+"\n")))
	cp.mustCtl(secret, "apply", "-f", "-")
	cp.Restart()
	eventually(t, 45*time.Second, "the control plane refusing the revoked token on the ADS stream", func() error {
		l := cp.log.String()
		if !strings.Contains(l, "refusing a proxy: dataplane token") || !strings.Contains(l, "token revoked") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	wantLog(t, "trellis-cp", cp.log.String(), "proxy=default/backend-1")
}
