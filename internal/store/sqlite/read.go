package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

const columns = `kind, mesh, name, labels, spec, version, creation_time, modification_time`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (*store.Record, error) {
	var (
		r            store.Record
		labels       string
		version      int64
		created, mod int64
	)
	if err := sc.Scan(&r.Kind, &r.Mesh, &r.Name, &labels, &r.Spec, &version, &created, &mod); err != nil {
		return nil, err
	}
	if labels != "" && labels != "{}" {
		if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
			return nil, fmt.Errorf("decoding labels of %s %q: %w", r.Kind, r.Name, err)
		}
	}
	if r.Spec == nil {
		r.Spec = []byte{}
	}
	r.Version = strconv.FormatInt(version, 10)
	r.CreationTime = time.Unix(0, created).UTC()
	r.ModificationTime = time.Unix(0, mod).UTC()
	return &r, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, k store.Key) (*store.Record, error) {
	row := s.st.get.QueryRowContext(ctx, k.Kind, k.Name, k.Mesh)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading %s %q: %w", k.Kind, k.Name, err)
	}
	return r, nil
}

// where turns q's filters into a WHERE clause and its arguments. Names are
// matched with instr, which is case-sensitive like strings.Contains and
// needs no escaping (LIKE is case-insensitive in SQLite); labels are matched
// with json_each, which needs no JSON-path quoting of odd keys.
func where(q store.Query) (string, []any) {
	conds := []string{`kind = ?`}
	args := []any{q.Kind}
	if q.Mesh != "" {
		conds = append(conds, `mesh = ?`)
		args = append(args, q.Mesh)
	}
	if q.NameContains != "" {
		conds = append(conds, `instr(name, ?) > 0`)
		args = append(args, q.NameContains)
	}
	keys := make([]string, 0, len(q.Labels))
	for k := range q.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		conds = append(conds, `EXISTS (SELECT 1 FROM json_each(resources.labels) AS l
			WHERE l.key = ? AND l.type = 'text' AND l.value = ?)`)
		args = append(args, k, q.Labels[k])
	}
	return strings.Join(conds, " AND "), args
}

// List implements store.Store. The count and the page come from one read
// transaction, so they agree.
func (s *Store) List(ctx context.Context, q store.Query) (*store.Page, error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing %s: %w", q.Kind, err)
	}
	defer tx.Rollback()
	cond, args := where(q)
	page := &store.Page{Items: []*store.Record{}}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM resources WHERE `+cond, args...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("sqlite store: counting %s: %w", q.Kind, err)
	}
	offset := max(q.Offset, 0)
	if page.Total <= offset {
		return page, nil
	}
	limit := -1
	if q.Limit > 0 {
		limit = q.Limit
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+columns+` FROM resources WHERE `+cond+
		` ORDER BY name, mesh LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing %s: %w", q.Kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: listing %s: %w", q.Kind, err)
		}
		page.Items = append(page.Items, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing %s: %w", q.Kind, err)
	}
	return page, nil
}

func sortKeys(ks []store.Key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Name != ks[j].Name {
			return ks[i].Name < ks[j].Name
		}
		return ks[i].Kind < ks[j].Kind
	})
}
