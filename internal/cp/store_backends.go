package cp

import (
	"context"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/postgres"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
)

func openSQLite(ctx context.Context, path string) (store.Store, error) {
	return sqlite.Open(ctx, path)
}

func openPostgres(ctx context.Context, url string) (store.Store, error) {
	return postgres.Open(ctx, url)
}
