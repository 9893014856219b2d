// Package postgres is the Store for production and HA: several control-plane
// instances share one PostgreSQL database.
//
// Versions come from a sequence. Update is a compare-and-swap on the version
// column. A trigger on the resources table calls pg_notify on the
// trellis_resource_events channel for every inserted, updated and deleted
// row, inside the writing transaction, so PostgreSQL delivers the events
// after commit, in commit order, to every instance. Each Store listens on a
// dedicated connection and publishes what it hears to its in-process
// store.Broadcaster; its own writes reach its watchers the same way. When
// the listening connection breaks, the Store reconnects with backoff and then
// closes every watcher channel, since events may have been lost meanwhile:
// watchers list again and watch anew.
//
// Names and the other key fields are stored with the "C" collation, so
// listing orders them byte-wise whatever the database's locale. An event
// must fit PostgreSQL's 8000-byte NOTIFY payload, so a write whose kind,
// mesh and name add up to more than about 7900 bytes fails.
package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Channel is the LISTEN/NOTIFY channel that carries change events.
const Channel = "trellis_resource_events"

// migrationLock is the advisory lock key that serializes schema migrations
// of instances starting at once.
const migrationLock int64 = 0x7472656c6c6973 // "trellis"

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	store.Broadcaster
	pool *pgxpool.Pool

	stopListener context.CancelFunc
	listenerDone chan struct{}

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), migrates its schema and starts listening for change
// events. It returns once the listener is listening, so a Watch that starts
// after Open sees every later change.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres store: parsing connection URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, listenerDone: make(chan struct{})}
	conn, err := listenConn(ctx, cfg.ConnConfig)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListener = cancel
	go s.listen(lctx, cfg.ConnConfig, conn)
	return s, nil
}

// Close implements store.Store: it stops the listener, closes every watcher
// and the connection pool. Closing twice is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopListener()
		<-s.listenerDone
		s.CloseAll()
		s.pool.Close()
	})
	return nil
}

// migrations are applied in order, each once; trellis_schema_version lists
// those applied. Append new ones, never edit old ones.
var migrations = []string{
	`CREATE SEQUENCE trellis_resource_version;
	CREATE TABLE trellis_resources (
		kind              text COLLATE "C" NOT NULL,
		mesh              text COLLATE "C" NOT NULL,
		name              text COLLATE "C" NOT NULL,
		labels            jsonb NOT NULL DEFAULT '{}',
		spec              bytea NOT NULL,
		version           bigint NOT NULL,
		creation_time     timestamptz NOT NULL,
		modification_time timestamptz NOT NULL,
		PRIMARY KEY (kind, name, mesh)
	);
	CREATE INDEX trellis_resources_by_mesh ON trellis_resources (mesh);
	CREATE FUNCTION trellis_notify_resource() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		r  trellis_resources;
		op text;
		v  bigint;
	BEGIN
		IF TG_OP = 'DELETE' THEN
			r := OLD; op := 'delete'; v := nextval('trellis_resource_version');
		ELSIF TG_OP = 'UPDATE' THEN
			r := NEW; op := 'update'; v := NEW.version;
		ELSE
			r := NEW; op := 'create'; v := NEW.version;
		END IF;
		PERFORM pg_notify('` + Channel + `', json_build_object(
			'op', op, 'kind', r.kind, 'mesh', r.mesh, 'name', r.name, 'version', v::text)::text);
		RETURN NULL;
	END $$;
	CREATE TRIGGER trellis_resources_notify
		AFTER INSERT OR UPDATE OR DELETE ON trellis_resources
		FOR EACH ROW EXECUTE FUNCTION trellis_notify_resource();`,
}

// migrate brings the schema up to date in one transaction, holding an
// advisory lock so instances starting together migrate one after another.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS trellis_schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM trellis_schema_version`).Scan(&current); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d)", current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migrating to version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO trellis_schema_version (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("recording version %d: %w", v, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres store: migrating schema: %w", err)
	}
	return nil
}
