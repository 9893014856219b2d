package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStartGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	urlA, urlB := pgtest.Start(t), pgtest.Start(t)
	if urlA == urlB {
		t.Fatalf("two Starts gave one database: %s", urlA)
	}
	a, err := pgx.Connect(ctx, urlA)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer a.Close(ctx)
	if _, err := a.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatalf("exec: %v", err)
	}
	b, err := pgx.Connect(ctx, urlB)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer b.Close(ctx)
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees the first's table: %d %v", n, err)
	}
	var user string
	if err := a.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil || user != "postgres" {
		t.Fatalf("current_user %q %v", user, err)
	}
}

func TestStartServerStop(t *testing.T) {
	if err := pgtest.Available(); err != nil {
		t.Skip(err)
	}
	// Not t.TempDir: its parent is private to the test's user, and the
	// server may run as another.
	srvDir, err := os.MkdirTemp("", "pgtest-stop-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srvDir) })
	srv, err := pgtest.StartServer(srvDir)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	conn.Close(ctx)
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := pgx.Connect(ctx, srv.URL()); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
}
