package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// demoMesh turns mTLS on for the demo's mesh: a builtin CA, PERMISSIVE:
// sidecars talk mTLS to each other, and a browser can still reach the
// frontend through its sidecar in plaintext.
const demoMesh = `{"type":"Mesh","name":"default","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","mode":"PERMISSIVE"}]}}`

// demoAllowAll lets every service of the mesh call every other. With mTLS
// on and no MeshTrafficPermission, all traffic is denied (as in Kuma 2.14),
// so the demo creates this one for its own mesh.
const demoAllowAll = `{"type":"MeshTrafficPermission","name":"allow-all","mesh":"default","spec":{"targetRef":{"kind":"Mesh"},"from":[{"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"}}]}}`

// secureMesh applies the demo mesh's mTLS settings and its allow-all
// permission through the API, as `trellisctl apply` would.
func (d *demo) secureMesh(ctx context.Context) error {
	for _, r := range []struct{ path, body string }{
		{"/meshes/default", demoMesh},
		{"/meshes/default/meshtrafficpermissions/allow-all", demoAllowAll},
	} {
		if err := d.put(ctx, r.path, r.body); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) put(ctx context.Context, path, body string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.apiURL()+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
