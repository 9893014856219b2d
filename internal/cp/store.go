package cp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// openStore opens the store the configuration names.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Type {
	case config.StoreMemory:
		return memory.New(), nil
	case config.StoreSQLite:
		if err := os.MkdirAll(filepath.Dir(cfg.Store.SQLite.Path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the folder of the SQLite file: %w", err)
		}
		return openSQLite(ctx, cfg.Store.SQLite.Path)
	case config.StorePostgres:
		return openPostgres(ctx, cfg.Store.Postgres.URL)
	case config.StoreKubernetes:
		return openKubernetesStore(ctx, cfg, log)
	}
	return nil, fmt.Errorf("store.type %q: unknown store", cfg.Store.Type)
}
