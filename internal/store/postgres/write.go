package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Times come from the database's clock, so instances with skewed clocks
// still agree, and have microsecond precision, as timestamptz keeps them.

func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("postgres store: encoding labels: %w", err)
	}
	return string(b), nil
}

func spec(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// createSQL inserts a record if its mesh (when it has one) exists, holding a
// key-share lock on the Mesh row so a concurrent mesh delete waits for it
// (and then deletes the new record too) or makes it fail.
const createSQL = `
WITH m AS (
	SELECT 1 FROM trellis_resources
	WHERE kind = $6 AND mesh = '' AND name = $2
	FOR KEY SHARE
)
INSERT INTO trellis_resources (kind, mesh, name, labels, spec, version, creation_time, modification_time)
SELECT $1, $2, $3, $4::jsonb, $5::bytea, nextval('trellis_resource_version'), c.now, c.now
FROM (SELECT clock_timestamp() AS now) AS c
WHERE $2 = '' OR EXISTS (SELECT 1 FROM m)
ON CONFLICT DO NOTHING
RETURNING version, creation_time, modification_time`

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	var (
		version       int64
		created, modt time.Time
	)
	err = s.pool.QueryRow(ctx, createSQL, r.Kind, r.Mesh, r.Name, labels, spec(r.Spec), store.MeshKind).
		Scan(&version, &created, &modt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.createFailed(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("postgres store: creating %s %q: %w", r.Kind, r.Name, err)
	}
	r.Version = strconv.FormatInt(version, 10)
	r.CreationTime, r.ModificationTime = created.UTC(), modt.UTC()
	return nil
}

// createFailed tells why createSQL inserted nothing.
func (s *Store) createFailed(ctx context.Context, r *store.Record) error {
	if r.Mesh != "" {
		ok, err := s.exists(ctx, store.Key{Kind: store.MeshKind, Name: r.Mesh})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("mesh %q: %w", r.Mesh, store.ErrMeshNotFound)
		}
	}
	return fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrAlreadyExists)
}

func (s *Store) exists(ctx context.Context, k store.Key) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM trellis_resources WHERE kind = $1 AND mesh = $2 AND name = $3)`,
		k.Kind, k.Mesh, k.Name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres store: reading %s %q: %w", k.Kind, k.Name, err)
	}
	return ok, nil
}

const updateSQL = `
UPDATE trellis_resources
SET labels = $4::jsonb, spec = $5::bytea, version = nextval('trellis_resource_version'),
	modification_time = greatest(clock_timestamp(), modification_time + interval '1 microsecond')
WHERE kind = $1 AND mesh = $2 AND name = $3 AND version = $6
RETURNING version, creation_time, modification_time`

// Update implements store.Store: it changes the row only if its version is
// still r.Version; when no row changed, it tells a missing record from a
// stale version.
func (s *Store) Update(ctx context.Context, r *store.Record) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	old, perr := strconv.ParseInt(r.Version, 10, 64)
	if perr == nil {
		var (
			version       int64
			created, modt time.Time
		)
		err = s.pool.QueryRow(ctx, updateSQL, r.Kind, r.Mesh, r.Name, labels, spec(r.Spec), old).
			Scan(&version, &created, &modt)
		if err == nil {
			r.Version = strconv.FormatInt(version, 10)
			r.CreationTime, r.ModificationTime = created.UTC(), modt.UTC()
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres store: updating %s %q: %w", r.Kind, r.Name, err)
		}
	}
	ok, err := s.exists(ctx, r.Key())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrNotFound)
	}
	return fmt.Errorf("%s %q at version %q: %w", r.Kind, r.Name, r.Version, store.ErrConflict)
}

// Delete implements store.Store. Deleting a Mesh locks its row first (so
// creates in it wait, then fail), deletes its records, then the Mesh, in one
// transaction; the trigger sends a delete event for each.
func (s *Store) Delete(ctx context.Context, k store.Key) error {
	if k.Kind != store.MeshKind || k.Mesh != "" {
		tag, err := s.pool.Exec(ctx, `DELETE FROM trellis_resources WHERE kind = $1 AND mesh = $2 AND name = $3`,
			k.Kind, k.Mesh, k.Name)
		if err != nil {
			return fmt.Errorf("postgres store: deleting %s %q: %w", k.Kind, k.Name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
		}
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM trellis_resources WHERE kind = $1 AND mesh = '' AND name = $2 FOR UPDATE`,
			k.Kind, k.Name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("postgres store: locking mesh %q: %w", k.Name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM trellis_resources WHERE mesh = $1`, k.Name); err != nil {
			return fmt.Errorf("postgres store: deleting records of mesh %q: %w", k.Name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM trellis_resources WHERE kind = $1 AND mesh = '' AND name = $2`,
			k.Kind, k.Name); err != nil {
			return fmt.Errorf("postgres store: deleting mesh %q: %w", k.Name, err)
		}
		return nil
	})
}
