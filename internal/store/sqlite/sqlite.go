// Package sqlite is the embedded default Store: one SQLite file in the
// control plane's data directory, through the pure-Go modernc.org/sqlite
// driver.
//
// The file runs in WAL mode, so readers never wait for the writer. Writes are
// serialized inside the process (SQLite has a single writer anyway) and each
// is one IMMEDIATE transaction; a busy timeout covers other processes that
// open the same file. Versions come from a revision counter kept in the
// database, so they keep growing across restarts. Watch events are published
// to the in-process store.Broadcaster after the transaction commits: only
// watchers in this process see them.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	// The pure-Go SQLite driver, registered as "sqlite".
	_ "modernc.org/sqlite"

	"github.com/trellis-mesh/trellis/internal/store"
)

// BusyTimeoutMillis is how long a connection waits for another process's
// lock before failing with SQLITE_BUSY.
const BusyTimeoutMillis = 10000

// Store is a store.Store on one SQLite file.
type Store struct {
	store.Broadcaster

	// writer has one connection whose transactions begin IMMEDIATE;
	// reader has several whose transactions begin DEFERRED, so reads take
	// no write lock.
	writer *sql.DB
	reader *sql.DB
	st     *statements
	// wmu serializes writes so events are published in commit order.
	wmu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed, along with its parent directory) the
// database file at path and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: creating directory: %w", err)
	}
	s := &Store{}
	if s.writer, err = sql.Open("sqlite", dsn(abs, "immediate")); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetConnMaxIdleTime(0)
	if s.reader, err = sql.Open("sqlite", dsn(abs, "deferred")); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	s.reader.SetMaxOpenConns(4)
	s.reader.SetMaxIdleConns(4)
	if err := migrate(ctx, s.writer); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	if s.st, err = prepare(ctx, s.writer, s.reader); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	return s, nil
}

// dsn is the driver's data source name: a file: URI, so any character in the
// path is safe, with per-connection pragmas.
func dsn(abs, txlock string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMillis))
	q.Add("_pragma", "journal_mode(WAL)")
	// In WAL mode NORMAL never corrupts the file; a power cut may lose the
	// last commits, a process crash loses nothing.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", txlock)
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}

// Close implements store.Store: it closes every watcher and the database.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.CloseAll()
		s.wmu.Lock()
		defer s.wmu.Unlock()
		var errs []error
		if s.st != nil {
			errs = append(errs, s.st.close())
		}
		if s.reader != nil {
			errs = append(errs, s.reader.Close())
		}
		if s.writer != nil {
			errs = append(errs, s.writer.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// migrations are applied in order; schema_version holds how many ran.
// Append new ones, never edit old ones.
var migrations = []string{
	`CREATE TABLE revision (
		id  INTEGER PRIMARY KEY CHECK (id = 1),
		rev INTEGER NOT NULL
	);
	INSERT INTO revision (id, rev) VALUES (1, 0);
	CREATE TABLE resources (
		kind              TEXT NOT NULL,
		mesh              TEXT NOT NULL,
		name              TEXT NOT NULL,
		labels            TEXT NOT NULL DEFAULT '{}',
		spec              BLOB NOT NULL,
		version           INTEGER NOT NULL,
		creation_time     INTEGER NOT NULL,
		modification_time INTEGER NOT NULL,
		PRIMARY KEY (kind, name, mesh)
	) WITHOUT ROWID;
	CREATE INDEX resources_by_mesh ON resources (mesh);`,
}

// migrate creates or upgrades the schema in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d)", current, len(migrations))
	}
	if current == len(migrations) {
		return nil
	}
	for i := current; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(migrations)); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	return nil
}
