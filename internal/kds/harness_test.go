package kds_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
	"github.com/trellis-mesh/trellis/internal/tlscert"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

func quietLog() *slog.Logger {
	if os.Getenv("KDS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func sqliteStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trellis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func memoryStore(t *testing.T) store.Store {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	return st
}

// global is a KDS server on loopback that can be stopped and restarted on
// the same address.
type global struct {
	t      *testing.T
	st     store.Store
	addr   string
	dir    string
	ca     string
	zt     *tokens.ZoneTokens
	cancel context.CancelFunc
	done   chan error
}

func startGlobal(t *testing.T, st store.Store) *global {
	t.Helper()
	dir := t.TempDir()
	g := &global{t: t, st: st, dir: dir, ca: filepath.Join(dir, "kds.crt"), zt: tokens.NewZoneTokens(st)}
	if err := tlscert.Ensure(g.ca, filepath.Join(dir, "kds.key"), "kds test", nil); err != nil {
		t.Fatal(err)
	}
	if err := g.zt.EnsureZoneSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.start("127.0.0.1:0")
	t.Cleanup(g.stop)
	return g
}

func (g *global) start(addr string) {
	g.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket of a restart may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	pair, err := tlsPair(g.ca, filepath.Join(g.dir, "kds.key"))
	if err != nil {
		g.t.Fatal(err)
	}
	srv := kds.NewServer(g.st, kinds.Registry(), g.zt, "global-1", quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan error, 1)
	go func() { g.done <- srv.Serve(ctx, ln, pair) }()
}

func (g *global) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.cancel = nil
}

func (g *global) restart() { g.stop(); g.start(g.addr) }

// tokenFile issues a token for zone into a file.
func (g *global) tokenFile(zone string, validFor time.Duration) string {
	g.t.Helper()
	tok, err := g.zt.IssueZoneToken(context.Background(), zone, validFor)
	if err != nil {
		g.t.Fatal(err)
	}
	p := filepath.Join(g.t.TempDir(), zone+".token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// zoneCP is a zone's KDS client.
type zoneCP struct {
	t      *testing.T
	name   string
	st     store.Store
	client *kds.Client
	cancel context.CancelFunc
	done   chan error
}

func startZone(t *testing.T, g *global, name string, st store.Store) *zoneCP {
	t.Helper()
	c, err := kds.NewClient(kds.ClientConfig{
		Zone: name, GlobalAddress: "grpcs://" + g.addr, CACertFile: g.ca,
		TokenFile: g.tokenFile(name, time.Hour), InstanceID: name + "-cp",
	}, st, kinds.Registry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	z := &zoneCP{t: t, name: name, st: st, client: c}
	z.start()
	t.Cleanup(z.stop)
	return z
}

func (z *zoneCP) start() {
	ctx, cancel := context.WithCancel(context.Background())
	z.cancel, z.done = cancel, make(chan error, 1)
	go func() { z.done <- z.client.Run(ctx) }()
}

func (z *zoneCP) stop() {
	if z.cancel == nil {
		return
	}
	z.cancel()
	<-z.done
	z.cancel = nil
}

// put creates or replaces a record.
func put(t *testing.T, st store.Store, kind, mesh, name, spec string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	rec := &store.Record{Kind: kind, Mesh: mesh, Name: name, Spec: []byte(spec), Labels: labels}
	cur, err := st.Get(ctx, rec.Key())
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = st.Create(ctx, rec)
	case err == nil:
		rec.Version = cur.Version
		err = st.Update(ctx, rec)
	}
	if err != nil {
		t.Fatalf("put %s %s/%s: %v", kind, mesh, name, err)
	}
}

func del(t *testing.T, st store.Store, kind, mesh, name string) {
	t.Helper()
	if err := st.Delete(context.Background(), store.Key{Kind: kind, Mesh: mesh, Name: name}); err != nil {
		t.Fatalf("delete %s %s/%s: %v", kind, mesh, name, err)
	}
}

// names lists "mesh/name" of kind's records, sorted.
func names(t *testing.T, st store.Store, kind string) []string {
	t.Helper()
	page, err := st.List(context.Background(), store.Query{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range page.Items {
		out = append(out, r.Mesh+"/"+r.Name)
	}
	sort.Strings(out)
	return out
}

func get(t *testing.T, st store.Store, kind, mesh, name string) *store.Record {
	t.Helper()
	r, err := st.Get(context.Background(), store.Key{Kind: kind, Mesh: mesh, Name: name})
	if err != nil {
		return nil
	}
	return r
}

// eventually retries check until it returns nil or within passes.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantNames(t *testing.T, st store.Store, kind string, want ...string) func() error {
	return func() error {
		got := names(t, st, kind)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("%s: got %v, want %v", kind, got, want)
		}
		return nil
	}
}

func specOf(r *store.Record) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Spec, &m)
	return m
}

func labelsOf(r *store.Record) map[string]string { return maps.Clone(r.Labels) }

func tlsPair(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
