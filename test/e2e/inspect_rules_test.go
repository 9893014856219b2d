package e2e

import (
	"strings"
	"testing"
)

// inspectRulesManifests: a mesh with a client proxy of two outbounds
// (backend and db), a MeshTimeout and a MeshRetry for backend only.
const inspectRulesManifests = `type: Mesh
name: inspect
---
type: Dataplane
mesh: inspect
name: client-1
networking:
  address: 127.0.0.1
  inbound:
    - port: 20001
      servicePort: 20002
      tags:
        kuma.io/service: client
  outbound:
    - port: 10001
      tags:
        kuma.io/service: backend
    - port: 10002
      tags:
        kuma.io/service: db
---
type: MeshTimeout
mesh: inspect
name: timeout-backend
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
    - targetRef:
        kind: MeshService
        name: backend
      default:
        http:
          requestTimeout: 750ms
---
type: MeshRetry
mesh: inspect
name: retry-backend
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: backend
      default:
        http:
          numRetries: 7
`

// outboundBlock returns, from the section of kind in the rules view, the
// heading of the outbound to service and the conf lines under it.
func outboundBlock(t *testing.T, out, kind, service string) (string, string) {
	t.Helper()
	i := strings.Index(out, "\n"+kind+" (")
	if i < 0 {
		t.Fatalf("no %s section in:\n%s", kind, out)
	}
	sec := out[i+1:]
	if j := strings.Index(sec, "\n\n"); j >= 0 {
		sec = sec[:j]
	}
	lines := strings.Split(sec, "\n")
	for k, line := range lines {
		if !strings.HasPrefix(line, "  outbound ") || !strings.Contains(line, " to "+service) {
			continue
		}
		var conf []string
		for _, l := range lines[k+1:] {
			if !strings.HasPrefix(l, "    ") {
				break
			}
			conf = append(conf, strings.TrimSpace(l))
		}
		return line, strings.Join(conf, "\n")
	}
	t.Fatalf("no outbound to %s in the %s section:\n%s", service, kind, sec)
	return "", ""
}

// TestInspectRules applies a MeshTimeout and a MeshRetry for one
// destination and checks that trellisctl's rules view shows them on that
// outbound only, next to the mesh's default policies.
func TestInspectRules(t *testing.T) {
	cp := startCP(t, nil)
	cp.mustCtl(inspectRulesManifests, "apply", "-f", "-")

	out := cp.mustCtl("", "inspect", "dataplane", "client-1", "-m", "inspect", "--type", "rules")

	head, conf := outboundBlock(t, out, "MeshTimeout", "backend")
	if !strings.HasPrefix(head, "  outbound 127.0.0.1:10001 to backend [tcp] (from ") || !strings.HasSuffix(head, "timeout-backend):") ||
		!strings.Contains(conf, "requestTimeout: 750ms") {
		t.Errorf("MeshTimeout on backend:\n%s\n%s\nin:\n%s", head, conf, out)
	}
	head, conf = outboundBlock(t, out, "MeshTimeout", "db")
	if strings.Contains(head, "timeout-backend") || strings.Contains(conf, "750ms") {
		t.Errorf("MeshTimeout on db should not come from timeout-backend:\n%s\n%s", head, conf)
	}
	head, conf = outboundBlock(t, out, "MeshRetry", "backend")
	if !strings.HasSuffix(head, "retry-backend):") || !strings.Contains(conf, "numRetries: 7") {
		t.Errorf("MeshRetry on backend:\n%s\n%s\nin:\n%s", head, conf, out)
	}
	head, conf = outboundBlock(t, out, "MeshRetry", "db")
	if strings.Contains(head, "retry-backend") || strings.Contains(conf, "numRetries: 7") {
		t.Errorf("MeshRetry on db should not come from retry-backend:\n%s\n%s", head, conf)
	}

	// The policy's side: the proxies it selects.
	list := cp.mustCtl("", "inspect", "meshtimeout", "timeout-backend", "-m", "inspect")
	if !strings.Contains(list, "Dataplane   inspect   client-1") || !strings.Contains(list, "Total: 1") {
		t.Errorf("inspect meshtimeout:\n%s", list)
	}
}
