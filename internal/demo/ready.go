package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// pollInterval is how often start-up checks are repeated.
const pollInterval = 100 * time.Millisecond

// check is something start-up waits for: url answering 200, served by
// (or, for the end-to-end check, depending on) proc.
type check struct {
	// what names it in messages: "the control plane (trellis-cp)".
	what string
	url  string
	proc *child
	// last is the last answer or error, for the timeout message.
	last string
}

// waitReady polls every check until all answer 200. It fails as soon as
// one's process exits, or when deadline passes, naming what did not come
// up and quoting the end of its log.
func waitReady(ctx context.Context, hc *http.Client, deadline time.Time, timeout time.Duration, checks []*check) error {
	pending := checks
	for {
		var still []*check
		for _, c := range pending {
			if c.proc.exited() {
				return c.proc.describeFailure(c.proc.name, "exited while starting ("+c.proc.exitReason()+")")
			}
			if !c.poll(ctx, hc) {
				still = append(still, c)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			c := pending[0]
			return c.proc.describeFailure(c.what, fmt.Sprintf("did not become ready within %s (GET %s: %s)", timeout, c.url, c.last))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// poll GETs the check's URL once and reports whether it answered 200.
func (c *check) poll(ctx context.Context, hc *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		c.last = err.Error()
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.last = err.Error()
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return true
	}
	c.last = strings.Join(strings.Fields(resp.Status+" "+string(body)), " ")
	return false
}
