package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tokenValidity is how long the demo's dataplane tokens live: the demo
// runs until Ctrl-C, a week is plenty.
const tokenValidity = "168h"

// writeDataplaneToken asks the control plane (POST /tokens/dataplane, as
// `trellisctl generate dataplane-token` does) for a token that every
// instance of service may use, and writes it to dir/<service>.token,
// readable by this user only. It returns the file.
func (d *demo) writeDataplaneToken(dir, service string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"mesh": "default", "type": "dataplane", "validFor": tokenValidity,
		"tags": map[string][]string{"kuma.io/service": {service}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.apiURL()+"/tokens/dataplane", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("getting a dataplane token for %s: %w", service, err)
	}
	defer resp.Body.Close()
	token, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("getting a dataplane token for %s: %w", service, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("getting a dataplane token for %s: %s: %s", service, resp.Status, strings.TrimSpace(string(token)))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, service+".token")
	if err := os.WriteFile(path, token, 0o600); err != nil {
		return "", fmt.Errorf("writing the dataplane token: %w", err)
	}
	return path, nil
}
