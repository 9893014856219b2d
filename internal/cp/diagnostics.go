package cp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// openDiagnostics opens the diagnostics listener when addr is set; nil
// when diagnostics are off.
func openDiagnostics(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("diagnostics.address: %w", err)
	}
	return ln, nil
}

// serveDiagnostics serves Go's profiling handlers under /debug/pprof/ on
// ln until ctx ends.
func serveDiagnostics(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("diagnostics server listening", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("diagnostics server: %w", err)
	case <-ctx.Done():
	}
	_ = hs.Close() // a running CPU profile is not worth waiting for
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("diagnostics server: %w", err)
	}
	return nil
}
