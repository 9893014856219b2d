package cp

import (
	"context"
	"errors"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
)

func openSQLite(ctx context.Context, path string) (store.Store, error) {
	return sqlite.Open(ctx, path)
}

func openPostgres(ctx context.Context, url string) (store.Store, error) {
	return nil, errors.New("postgres store: not wired yet")
}
