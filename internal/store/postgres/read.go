package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-mesh/trellis/internal/store"
)

const columns = `kind, mesh, name, labels::text, spec, version, creation_time, modification_time`

func scanRecord(row pgx.Row, extra ...any) (*store.Record, error) {
	var (
		r            store.Record
		labels       string
		version      int64
		created, mod time.Time
	)
	dest := append([]any{&r.Kind, &r.Mesh, &r.Name, &labels, &r.Spec, &version, &created, &mod}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if labels != "{}" {
		if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
			return nil, fmt.Errorf("decoding labels of %s %q: %w", r.Kind, r.Name, err)
		}
	}
	if r.Spec == nil {
		r.Spec = []byte{}
	}
	r.Version = strconv.FormatInt(version, 10)
	r.CreationTime, r.ModificationTime = created.UTC(), mod.UTC()
	return &r, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, k store.Key) (*store.Record, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+columns+` FROM trellis_resources WHERE kind = $1 AND mesh = $2 AND name = $3`,
		k.Kind, k.Mesh, k.Name)
	r, err := scanRecord(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres store: reading %s %q: %w", k.Kind, k.Name, err)
	}
	return r, nil
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// where turns q's filters into a WHERE clause and its arguments: names with
// an escaped LIKE (case-sensitive in PostgreSQL), labels with jsonb
// containment.
func where(q store.Query) (string, []any, error) {
	conds := []string{`kind = $1`}
	args := []any{q.Kind}
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if q.Mesh != "" {
		add(`mesh = $?`, q.Mesh)
	}
	if q.NameContains != "" {
		add(`name LIKE $? ESCAPE '\'`, "%"+likeEscaper.Replace(q.NameContains)+"%")
	}
	if len(q.Labels) > 0 {
		b, err := json.Marshal(q.Labels)
		if err != nil {
			return "", nil, fmt.Errorf("postgres store: encoding label filter: %w", err)
		}
		add(`labels @> $?::jsonb`, string(b))
	}
	return strings.Join(conds, " AND "), args, nil
}

// List implements store.Store. One query returns the page and the total;
// only a page past the end needs a second query for the total.
func (s *Store) List(ctx context.Context, q store.Query) (*store.Page, error) {
	cond, args, err := where(q)
	if err != nil {
		return nil, err
	}
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = q.Limit
	}
	offset := max(q.Offset, 0)
	n := len(args)
	// The count is an uncorrelated subquery: computed once, from the index,
	// without reading every matching spec as a window count would.
	sql := `SELECT ` + columns + `, (SELECT count(*) FROM trellis_resources WHERE ` + cond + `)
		FROM trellis_resources WHERE ` + cond +
		` ORDER BY name, mesh LIMIT $` + strconv.Itoa(n+1) + ` OFFSET $` + strconv.Itoa(n+2)
	rows, err := s.pool.Query(ctx, sql, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: listing %s: %w", q.Kind, err)
	}
	defer rows.Close()
	page := &store.Page{Items: []*store.Record{}}
	var total int64
	for rows.Next() {
		r, err := scanRecord(rows, &total)
		if err != nil {
			return nil, fmt.Errorf("postgres store: listing %s: %w", q.Kind, err)
		}
		page.Items = append(page.Items, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: listing %s: %w", q.Kind, err)
	}
	page.Total = int(total)
	if len(page.Items) == 0 && offset > 0 {
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM trellis_resources WHERE `+cond, args...).Scan(&page.Total); err != nil {
			return nil, fmt.Errorf("postgres store: counting %s: %w", q.Kind, err)
		}
	}
	return page, nil
}
