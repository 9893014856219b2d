package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are prepared once at Open: SQLite spends much of a small
// write's time compiling its SQL. Write statements are prepared on the
// writer's one connection, so transactions reuse them; get on the readers.
type statements struct {
	bump, meshExists, insert, version, update, delete, deleteMesh *sql.Stmt
	get                                                           *sql.Stmt
}

func prepare(ctx context.Context, writer, reader *sql.DB) (*statements, error) {
	st := &statements{}
	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{writer, &st.bump, `UPDATE revision SET rev = rev + ? WHERE id = 1 RETURNING rev`},
		{writer, &st.meshExists, `SELECT 1 FROM resources WHERE kind = ? AND name = ? AND mesh = ''`},
		{writer, &st.insert, `INSERT INTO resources
			(kind, mesh, name, labels, spec, version, creation_time, modification_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{writer, &st.version, `SELECT version FROM resources WHERE kind = ? AND name = ? AND mesh = ?`},
		{writer, &st.update, `UPDATE resources
			SET labels = ?, spec = ?, version = ?, modification_time = ?
			WHERE kind = ? AND name = ? AND mesh = ? AND version = ?
			RETURNING creation_time`},
		{writer, &st.delete, `DELETE FROM resources WHERE kind = ? AND name = ? AND mesh = ?`},
		{writer, &st.deleteMesh, `DELETE FROM resources WHERE mesh = ? RETURNING kind, name`},
		{reader, &st.get, `SELECT ` + columns + ` FROM resources WHERE kind = ? AND name = ? AND mesh = ?`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("preparing %q: %w", p.text, err)
		}
		*p.dst = stmt
	}
	return st, nil
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.bump, st.meshExists, st.insert, st.version, st.update, st.delete, st.deleteMesh, st.get} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
