package kds_test

import (
	"context"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/postgres"
)

func openPostgres(t *testing.T, url string) (store.Store, error) {
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	return st, nil
}
