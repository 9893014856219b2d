package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-mesh/trellis/internal/store"
)

// ListenerApplicationName is the application_name of the listening
// connection, to tell it apart in pg_stat_activity.
const ListenerApplicationName = "trellis-store-listener"

// Reconnect backoff of the listener.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// listenConn opens a dedicated connection and LISTENs on Channel.
func listenConn(ctx context.Context, base *pgx.ConnConfig) (*pgx.Conn, error) {
	cfg := base.Copy()
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: listener: connecting: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("postgres store: listener: LISTEN: %w", err)
	}
	return conn, nil
}

// listen publishes notifications received on conn until ctx ends. When the
// connection fails it reconnects with backoff, then closes every watcher:
// events sent while it was away are lost, so watchers must resync.
func (s *Store) listen(ctx context.Context, base *pgx.ConnConfig, conn *pgx.Conn) {
	defer close(s.listenerDone)
	for {
		err := s.receive(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres store: change listener lost its connection; reconnecting", "error", err)
		conn = s.reconnect(ctx, base)
		if conn == nil {
			return
		}
		slog.Info("postgres store: change listener reconnected; closing watchers so they resync")
		s.CloseAll()
	}
}

// receive publishes notifications until the connection fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel != Channel {
			continue
		}
		e, err := decodeEvent(n.Payload)
		if err != nil {
			slog.Warn("postgres store: ignoring malformed change event", "payload", n.Payload, "error", err)
			continue
		}
		s.Publish(e)
	}
}

// reconnect retries listenConn with exponential backoff until it succeeds or
// ctx ends (then it returns nil).
func (s *Store) reconnect(ctx context.Context, base *pgx.ConnConfig) *pgx.Conn {
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := listenConn(cctx, base)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		slog.Warn("postgres store: change listener could not reconnect", "error", err, "retry_in", backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// wireEvent is an event as the trigger encodes it.
type wireEvent struct {
	Op      store.Op `json:"op"`
	Kind    string   `json:"kind"`
	Mesh    string   `json:"mesh"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
}

func decodeEvent(payload string) (store.Event, error) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return store.Event{}, err
	}
	switch w.Op {
	case store.OpCreate, store.OpUpdate, store.OpDelete:
	default:
		return store.Event{}, fmt.Errorf("unknown op %q", w.Op)
	}
	return store.Event{Op: w.Op, Kind: w.Kind, Mesh: w.Mesh, Name: w.Name, Version: w.Version}, nil
}
