package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// This file drives headless Chromium for the GUI tests: it starts the
// browser with a fresh profile, records the console, waits for the page
// to reach a state, and keeps screenshots as test artifacts.

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium tab and what its console said.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

// findChromium returns the browser's path, or skips the test loudly
// (fails it under TRELLIS_TEST_STRICT=1) when it is not installed.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{chromiumPath, "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "SKIPPING the GUI browser test: chromium is not installed (Debian package chromium, at " + chromiumPath + ")"
	if os.Getenv("TRELLIS_TEST_STRICT") == "1" {
		t.Fatal(msg + " and TRELLIS_TEST_STRICT=1")
	}
	t.Skip(msg)
	return ""
}

// artifactsDir is where the GUI screenshots go: $TRELLIS_TEST_ARTIFACTS/gui,
// else <repo>/.artifacts/gui (git ignores it).
func artifactsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TRELLIS_TEST_ARTIFACTS")
	if base == "" {
		repo, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(repo, ".artifacts")
	}
	dir := filepath.Join(base, "gui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating the artifacts folder: %v", err)
	}
	return dir
}

// startBrowser starts headless Chromium with a fresh profile and a
// 1280x900 viewport; it stops when the test ends.
func startBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, artifacts: artifactsDir(t)}
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// Start the browser now so a missing or broken one fails here.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", execPath, err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// problems returns the console errors and uncaught exceptions so far.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
		}
	}
	return out
}

// do runs actions with a deadline, failing the test on error.
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// route shows a GUI page by changing the hash, as a click on a link does.
func (b *browser) route(hash string) {
	b.t.Helper()
	eval[chromedp.Void](b, fmt.Sprintf("void (location.hash = %q)", hash))
}

// waitFor polls a JavaScript predicate until it is true; on timeout it
// fails with what the page shows.
func (b *browser) waitFor(what, predicate string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main')?.innerText ?? ''`))
		b.t.Fatalf("the GUI did not show %s within %s (%v); location %s; the page reads:\n%s\nconsole problems: %v",
			what, timeout, err, eval[string](b, "location.href"), text, b.problems())
	}
}

// a11yCheck lists basic accessibility faults of the page: no lang, form
// controls and links without a name, images without alt, not exactly one
// h1 in main.
const a11yCheck = `(() => {
  const out = [];
  if (!document.documentElement.lang) out.push('<html> has no lang');
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    const name = el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent.trim()) || el.textContent.trim() || el.title;
    if (!name) out.push('a ' + el.tagName.toLowerCase() + ' has no accessible name');
  }
  for (const a of document.querySelectorAll('a[href]')) {
    if (!a.textContent.trim() && !a.getAttribute('aria-label')) out.push('the link to ' + a.getAttribute('href') + ' has no text');
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) out.push('an image has no alt');
  const h1 = document.querySelectorAll('main h1').length;
  if (h1 !== 1) out.push('main has ' + h1 + ' h1 headings');
  return out;
})()`

// screenshot checks the page's basic accessibility (a11yCheck), then
// saves a full-page PNG in the artifacts folder and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	for _, p := range eval[[]string](b, a11yCheck) {
		b.t.Errorf("page %s: %s", name, p)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("writing %s: %v", path, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// pressKey presses one printable key as a keyboard does: a keyDown that
// carries its text (so a keydown handler that calls preventDefault stops
// the text, unlike chromedp.KeyEvent's separate char event), then keyUp.
func (b *browser) pressKey(key, code string, keyCode int64) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code, Text: key,
		UnmodifiedText: key, WindowsVirtualKeyCode: keyCode, NativeVirtualKeyCode: keyCode}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	for _, ev := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, ev); err != nil {
			b.t.Fatalf("pressing %q: %v", key, err)
		}
	}
}

// colorScheme emulates prefers-color-scheme (light or dark).
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		b.t.Fatalf("emulating prefers-color-scheme %s: %v", scheme, err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// mainHas is a predicate: the page's main element shows every text.
func mainHas(texts ...string) string {
	parts := make([]string, 0, len(texts))
	for _, s := range texts {
		parts = append(parts, fmt.Sprintf("m.includes(%s)", jsString(s)))
	}
	return fmt.Sprintf("(() => { const el = document.querySelector('main'); if (!el || el.getAttribute('aria-busy')) return false; const m = el.innerText; return %s; })()",
		strings.Join(parts, " && "))
}
