package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// write runs fn in one IMMEDIATE transaction, then publishes the events it
// returns once the transaction has committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) ([]store.Event, error)) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer tx.Rollback()
	events, err := fn(tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	s.Publish(events...)
	return nil
}

// bump advances the revision counter by n and returns the first of the n
// new revisions.
func bump(ctx context.Context, tx *sql.Tx, st *statements, n int) (int64, error) {
	var last int64
	err := tx.StmtContext(ctx, st.bump).QueryRowContext(ctx, n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: next revision: %w", err)
	}
	return last - int64(n) + 1, nil
}

func now() time.Time { return time.Now().UTC() }

func encodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("sqlite store: encoding labels: %w", err)
	}
	return string(b), nil
}

func spec(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		if r.Mesh != "" {
			var one int
			err := tx.StmtContext(ctx, s.st.meshExists).QueryRowContext(ctx, store.MeshKind, r.Mesh).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("mesh %q: %w", r.Mesh, store.ErrMeshNotFound)
			}
			if err != nil {
				return nil, fmt.Errorf("sqlite store: checking mesh %q: %w", r.Mesh, err)
			}
		}
		rev, err := bump(ctx, tx, s.st, 1)
		if err != nil {
			return nil, err
		}
		t := now()
		res, err := tx.StmtContext(ctx, s.st.insert).ExecContext(ctx, r.Kind, r.Mesh, r.Name, labels, spec(r.Spec), rev, t.UnixNano(), t.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("sqlite store: creating %s %q: %w", r.Kind, r.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("sqlite store: creating %s %q: %w", r.Kind, r.Name, err)
		} else if n == 0 {
			return nil, fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrAlreadyExists)
		}
		r.Version = strconv.FormatInt(rev, 10)
		r.CreationTime, r.ModificationTime = t, t
		return []store.Event{{Op: store.OpCreate, Kind: r.Kind, Mesh: r.Mesh, Name: r.Name, Version: r.Version}}, nil
	})
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, r *store.Record) error {
	labels, err := encodeLabels(r.Labels)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		var stored int64
		err := tx.StmtContext(ctx, s.st.version).QueryRowContext(ctx, r.Kind, r.Name, r.Mesh).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite store: reading %s %q: %w", r.Kind, r.Name, err)
		}
		if r.Version != strconv.FormatInt(stored, 10) {
			return nil, fmt.Errorf("%s %q at version %q (stored %d): %w", r.Kind, r.Name, r.Version, stored, store.ErrConflict)
		}
		rev, err := bump(ctx, tx, s.st, 1)
		if err != nil {
			return nil, err
		}
		t := now()
		var created int64
		err = tx.StmtContext(ctx, s.st.update).QueryRowContext(ctx, labels, spec(r.Spec), rev, t.UnixNano(), r.Kind, r.Name, r.Mesh, stored).Scan(&created)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: updating %s %q: %w", r.Kind, r.Name, err)
		}
		r.Version = strconv.FormatInt(rev, 10)
		r.CreationTime = time.Unix(0, created).UTC()
		r.ModificationTime = t
		return []store.Event{{Op: store.OpUpdate, Kind: r.Kind, Mesh: r.Mesh, Name: r.Name, Version: r.Version}}, nil
	})
}

// Delete implements store.Store. Deleting a Mesh deletes its records in the
// same transaction, with one event each, the Mesh's last.
func (s *Store) Delete(ctx context.Context, k store.Key) error {
	return s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		res, err := tx.StmtContext(ctx, s.st.delete).ExecContext(ctx, k.Kind, k.Name, k.Mesh)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: deleting %s %q: %w", k.Kind, k.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("sqlite store: deleting %s %q: %w", k.Kind, k.Name, err)
		} else if n == 0 {
			return nil, fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
		}
		deleted := []store.Key{}
		if k.Kind == store.MeshKind && k.Mesh == "" {
			if deleted, err = deleteMeshRecords(ctx, tx, s.st, k.Name); err != nil {
				return nil, err
			}
		}
		deleted = append(deleted, k)
		rev, err := bump(ctx, tx, s.st, len(deleted))
		if err != nil {
			return nil, err
		}
		events := make([]store.Event, len(deleted))
		for i, d := range deleted {
			events[i] = store.Event{Op: store.OpDelete, Kind: d.Kind, Mesh: d.Mesh, Name: d.Name,
				Version: strconv.FormatInt(rev+int64(i), 10)}
		}
		return events, nil
	})
}

// deleteMeshRecords deletes every record of a mesh and returns their keys,
// ordered by name, then kind.
func deleteMeshRecords(ctx context.Context, tx *sql.Tx, st *statements, meshName string) ([]store.Key, error) {
	rows, err := tx.StmtContext(ctx, st.deleteMesh).QueryContext(ctx, meshName)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: deleting records of mesh %q: %w", meshName, err)
	}
	defer rows.Close()
	var keys []store.Key
	for rows.Next() {
		k := store.Key{Mesh: meshName}
		if err := rows.Scan(&k.Kind, &k.Name); err != nil {
			return nil, fmt.Errorf("sqlite store: deleting records of mesh %q: %w", meshName, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: deleting records of mesh %q: %w", meshName, err)
	}
	sortKeys(keys)
	return keys, nil
}
