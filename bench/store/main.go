// Command store measures the Store implementations against each other in one
// run: creates, updates, gets and lists per second at a realistic size
// (Dataplane-sized specs, all in one mesh), with ratios against the memory
// store as the baseline.
//
//	go run ./bench/store            # memory, SQLite, PostgreSQL at 10,000 resources
//	go run ./bench/store -n 2000 -backends memory,sqlite
//
// PostgreSQL is a throwaway server from internal/testing/pgtest (fsync off);
// SQLite is a file in a temporary folder (WAL, synchronous=NORMAL). Each
// operation runs one at a time, from one goroutine.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/store/postgres"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

const (
	meshName = "default"
	kind     = "Dataplane"
	pageSize = 100
)

func main() {
	n := flag.Int("n", 10000, "resources per backend")
	backends := flag.String("backends", "memory,sqlite,postgres", "comma-separated backends to measure")
	pageWalks := flag.Int("page-walks", 2, "times to walk the whole list in pages of 100")
	fullLists := flag.Int("full-lists", 10, "times to list everything at once")
	flag.Parse()
	if err := run(*n, strings.Split(*backends, ","), *pageWalks, *fullLists); err != nil {
		fmt.Fprintln(os.Stderr, "bench/store:", err)
		os.Exit(1)
	}
}

// result holds operations per second.
type result struct {
	name                                        string
	creates, updates, gets, pageLists, fullList float64
}

func run(n int, backends []string, pageWalks, fullLists int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "trellis-bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The PostgreSQL server may run as another user, who must reach its
	// folder inside this one.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return err
	}

	fmt.Printf("Store benchmark: %d %s resources in one mesh, spec %d bytes, %d CPUs, %s\n",
		n, kind, len(dataplaneSpec(0)), runtime.NumCPU(), runtime.Version())
	var results []result
	for _, b := range backends {
		s, stop, err := open(ctx, strings.TrimSpace(b), tmp)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		fmt.Printf("measuring %s...\n", b)
		r, err := measure(ctx, s, n, pageWalks, fullLists)
		stop()
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		r.name = b
		results = append(results, r)
	}
	printTable(results)
	return nil
}

// open returns a fresh store of one backend and a function that closes it
// and releases what it used.
func open(ctx context.Context, backend, tmp string) (store.Store, func(), error) {
	switch backend {
	case "memory":
		s := memory.New()
		return s, func() { s.Close() }, nil
	case "sqlite":
		s, err := sqlite.Open(ctx, tmp+"/sqlite/trellis.db")
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	case "postgres":
		srv, err := pgtest.StartServer(tmp + "/pg")
		if err != nil {
			return nil, nil, err
		}
		url, err := srv.CreateDatabase(ctx, "bench")
		if err != nil {
			srv.Stop()
			return nil, nil, err
		}
		s, err := postgres.Open(ctx, url)
		if err != nil {
			srv.Stop()
			return nil, nil, err
		}
		return s, func() { s.Close(); srv.Stop() }, nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q (want memory, sqlite or postgres)", backend)
}

// dataplaneSpec is the canonical JSON of a typical Universal Dataplane: one
// inbound with a handful of tags, a few outbounds, admin port. About 700 bytes.
func dataplaneSpec(i int) []byte {
	return fmt.Appendf(nil, `{"networking":{"address":"10.%d.%d.%d","admin":{"port":9901},`+
		`"inbound":[{"port":8080,"servicePort":80,"serviceAddress":"127.0.0.1","tags":{"kuma.io/service":"backend-%d",`+
		`"kuma.io/protocol":"http","kuma.io/zone":"zone-1","team":"payments","version":"v%d","env":"production"},`+
		`"health":{"ready":true}}],`+
		`"outbound":[{"port":10001,"tags":{"kuma.io/service":"redis"}},{"port":10002,"tags":{"kuma.io/service":"postgres"}},`+
		`{"port":10003,"tags":{"kuma.io/service":"frontend"}},{"port":10004,"tags":{"kuma.io/service":"auth"}},`+
		`{"port":10005,"tags":{"kuma.io/service":"billing-%d"}}]},`+
		`"metrics":{"type":"prometheus","conf":{"port":5670,"path":"/metrics","tags":{"kuma.io/service":"backend-%d"}}}}`,
		i/65536%256, i/256%256, i%256, i%100, i%3, i%10, i%100)
}

func name(i int) string { return fmt.Sprintf("dp-%05d", i) }

// rate runs op for i in [0, count) and returns operations per second.
func rate(count int, op func(i int) error) (float64, error) {
	start := time.Now()
	for i := range count {
		if err := op(i); err != nil {
			return 0, err
		}
	}
	return float64(count) / time.Since(start).Seconds(), nil
}

func measure(ctx context.Context, s store.Store, n, pageWalks, fullLists int) (result, error) {
	var r result
	if err := s.Create(ctx, &store.Record{Kind: store.MeshKind, Name: meshName, Spec: []byte(`{}`)}); err != nil {
		return r, err
	}
	recs := make([]*store.Record, n)
	var err error
	r.creates, err = rate(n, func(i int) error {
		recs[i] = &store.Record{Kind: kind, Mesh: meshName, Name: name(i),
			Labels: map[string]string{"kuma.io/service": fmt.Sprintf("backend-%d", i%100)}, Spec: dataplaneSpec(i)}
		return s.Create(ctx, recs[i])
	})
	if err != nil {
		return r, fmt.Errorf("create: %w", err)
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	r.updates, err = rate(n, func(i int) error {
		rec := recs[order[i]]
		rec.Spec = dataplaneSpec(order[i] + 1)
		return s.Update(ctx, rec)
	})
	if err != nil {
		return r, fmt.Errorf("update: %w", err)
	}
	r.gets, err = rate(n, func(i int) error {
		_, err := s.Get(ctx, store.Key{Kind: kind, Mesh: meshName, Name: name(order[i])})
		return err
	})
	if err != nil {
		return r, fmt.Errorf("get: %w", err)
	}
	pages := (n + pageSize - 1) / pageSize
	r.pageLists, err = rate(pageWalks*pages, func(i int) error {
		p, err := s.List(ctx, store.Query{Kind: kind, Mesh: meshName, Offset: (i % pages) * pageSize, Limit: pageSize})
		if err == nil && (p.Total != n || len(p.Items) == 0) {
			err = fmt.Errorf("page %d: %d items of %d, want %d", i%pages, len(p.Items), p.Total, n)
		}
		return err
	})
	if err != nil {
		return r, fmt.Errorf("list page: %w", err)
	}
	r.fullList, err = rate(fullLists, func(int) error {
		p, err := s.List(ctx, store.Query{Kind: kind, Mesh: meshName})
		if err == nil && len(p.Items) != n {
			err = fmt.Errorf("full list: %d items, want %d", len(p.Items), n)
		}
		return err
	})
	if err != nil {
		return r, fmt.Errorf("full list: %w", err)
	}
	return r, nil
}

// printTable writes the table: operations per second, and the ratio to the first
// backend (memory, the baseline) in parentheses.
func printTable(results []result) {
	if len(results) == 0 {
		return
	}
	base := results[0]
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "backend\tcreates/s\tupdates/s\tgets/s\tlist pages of %d/s\tfull lists/s\t\n", pageSize)
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name,
			cell(r.creates, base.creates), cell(r.updates, base.updates), cell(r.gets, base.gets),
			cell(r.pageLists, base.pageLists), cell(r.fullList, base.fullList))
	}
	w.Flush()
	fmt.Printf("(x): ratio to %s, measured in the same run\n", base.name)
}

func cell(v, base float64) string {
	return fmt.Sprintf("%s (%s)", human(v), ratio(v/base))
}

func human(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(x float64) string {
	switch {
	case x >= 10:
		return fmt.Sprintf("%.0fx", x)
	case x >= 0.1:
		return fmt.Sprintf("%.2fx", x)
	}
	return fmt.Sprintf("%.3fx", x)
}
