package kds

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// MaxMessageBytes bounds one KDS message (a response carries at most
// maxBatch resources).
const MaxMessageBytes = 64 << 20

// insightInterval is how often an open stream's counters are written to
// the zone insight when they moved.
const insightInterval = time.Second

// healthInterval is how often an idle stream refreshes the zone insight's
// health check.
const healthInterval = 10 * time.Second

// ZoneTokenValidator checks a zone token (*tokens.ZoneTokens).
type ZoneTokenValidator interface {
	ValidateZoneToken(ctx context.Context, token, zone string) error
}

var _ ZoneTokenValidator = (*tokens.ZoneTokens)(nil)

// Server is the global control plane's end of KDS: it authenticates zones,
// records them (Zone and ZoneInsight) and runs both flows for each.
type Server struct {
	st         store.Store
	reg        *resource.Registry
	tokens     ZoneTokenValidator
	instanceID string
	log        *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one connection of a zone: both streams share its counters.
type session struct {
	stats *Stats
	refs  int
}

// NewServer returns the KDS server over the global store st.
func NewServer(st store.Store, reg *resource.Registry, zoneTokens ZoneTokenValidator, instanceID string, log *slog.Logger) *Server {
	return &Server{st: st, reg: reg, tokens: zoneTokens, instanceID: instanceID, log: log, sessions: map[string]*session{}}
}

// Serve serves KDS over TLS on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// Stop waits for the stream handlers: they record the zone's
		// disconnection before the store closes.
		grpc.WaitForHandlers(true),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 15 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	gs.RegisterService(&serviceDesc, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		gs.Stop()
	}()
	err := gs.Serve(ln)
	<-done
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// peer is an authenticated zone on one stream.
type peer struct {
	zone, instance, session, version string
}

// authenticate reads the zone's metadata, checks its token and that the
// zone is not disabled, and records the Zone resource.
func (s *Server) authenticate(ctx context.Context) (*peer, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p := &peer{zone: first(MDZone), instance: first(MDInstance), session: first(MDSession), version: first(MDVersion)}
	if p.zone == "" {
		return nil, grpcstatus.Errorf(codes.InvalidArgument, "the %s metadata (the zone's name) is missing", MDZone)
	}
	if reason := validate.Name(p.zone); reason != "" {
		return nil, grpcstatus.Errorf(codes.InvalidArgument, "zone name %q: %s", p.zone, reason)
	}
	if p.session == "" {
		p.session = p.zone + "/" + p.instance
	}
	token, ok := strings.CutPrefix(first(MDAuthorization), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, grpcstatus.Errorf(codes.Unauthenticated, "zone %q presented no zone token (set TRELLIS_MULTIZONE_ZONE_TOKEN_FILE)", p.zone)
	}
	if err := s.tokens.ValidateZoneToken(ctx, strings.TrimSpace(token), p.zone); err != nil {
		if errors.Is(err, tokens.ErrInvalidZoneToken) {
			return nil, grpcstatus.Errorf(codes.Unauthenticated, "zone %q: %v", p.zone, err)
		}
		return nil, grpcstatus.Errorf(codes.Unavailable, "zone %q: %v", p.zone, err)
	}
	if err := s.ensureZone(ctx, p.zone); err != nil {
		return nil, err
	}
	return p, nil
}

// ensureZone creates the Zone resource of a new zone and refuses a
// disabled one.
func (s *Server) ensureZone(ctx context.Context, zone string) error {
	key := store.Key{Kind: kinds.Zone, Name: zone}
	rec, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		spec, _ := json.Marshal(&system.Zone{})
		err = s.st.Create(ctx, &store.Record{Kind: kinds.Zone, Name: zone, Spec: spec})
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return grpcstatus.Errorf(codes.Unavailable, "recording zone %q: %v", zone, err)
		}
		s.log.Info("kds: new zone", "zone", zone)
		return nil
	}
	if err != nil {
		return grpcstatus.Errorf(codes.Unavailable, "reading zone %q: %v", zone, err)
	}
	var z system.Zone
	if err := json.Unmarshal(rec.Spec, &z); err != nil {
		return grpcstatus.Errorf(codes.Internal, "Zone %q: %v", zone, err)
	}
	if !z.IsEnabled() {
		return grpcstatus.Errorf(codes.PermissionDenied, "zone %q is disabled (Zone %s has enabled: false)", zone, zone)
	}
	return nil
}

func (s *Server) open(p *peer) *Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[p.session]
	if ss == nil {
		ss = &session{stats: NewStats()}
		s.sessions[p.session] = ss
	}
	ss.refs++
	return ss.stats
}

func (s *Server) close(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[p.session]; ss != nil {
		if ss.refs--; ss.refs <= 0 {
			delete(s.sessions, p.session)
		}
	}
}

// globalToZone serves the global's resources to a zone and keeps the
// zone's insight.
func (s *Server) globalToZone(ss grpc.ServerStream) error {
	ctx := ss.Context()
	p, err := s.authenticate(ctx)
	if err != nil {
		s.log.Warn("kds: refused a zone", "error", err)
		return err
	}
	stats := s.open(p)
	defer s.close(p)
	ctx, stopZone := context.WithCancel(ctx)
	defer stopZone()
	go s.endWhenDisabled(ctx, p.zone, stopZone)
	// Tell the zone at once that it was accepted (it waits for headers).
	if err := ss.SendHeader(metadata.Pairs(MDAccepted, "true")); err != nil {
		return err
	}
	s.log.Info("kds: zone connected", "zone", p.zone, "instance", p.instance, "stream", "global-to-zone")
	s.recordConnect(ctx, p)
	ictx, stop := context.WithCancel(ctx)
	go s.keepInsight(ictx, p, stats)
	err = NewSender(s.st, GlobalToZone(s.reg, p.zone), stats, s.log.With("zone", p.zone)).Serve(ctx, serverResponses{ss})
	stop()
	s.recordDisconnect(p, stats)
	s.log.Info("kds: zone disconnected", "zone", p.zone, "stream", "global-to-zone", "reason", err)
	return s.ended(ctx, ss, p, err)
}

// zoneToGlobal receives a zone's resources into the global store.
func (s *Server) zoneToGlobal(ss grpc.ServerStream) error {
	ctx := ss.Context()
	p, err := s.authenticate(ctx)
	if err != nil {
		s.log.Warn("kds: refused a zone", "error", err)
		return err
	}
	stats := s.open(p)
	defer s.close(p)
	ctx, stopZone := context.WithCancel(ctx)
	defer stopZone()
	go s.endWhenDisabled(ctx, p.zone, stopZone)
	if err := ss.SendHeader(metadata.Pairs(MDAccepted, "true")); err != nil {
		return err
	}
	err = NewReceiver(s.st, ZoneToGlobal(p.zone), stats, s.log.With("zone", p.zone)).Serve(ctx, serverRequests{ss})
	return s.ended(ctx, ss, p, err)
}

// endWhenDisabled calls stop when the zone's Zone resource is disabled
// while its stream is open: the zone reconnects and is refused.
func (s *Server) endWhenDisabled(ctx context.Context, zone string, stop context.CancelFunc) {
	events, err := s.st.Watch(ctx)
	if err != nil {
		return
	}
	for ev := range events {
		if ev.Kind != kinds.Zone || ev.Name != zone || ev.Op == store.OpDelete {
			continue
		}
		if err := s.ensureZone(ctx, zone); grpcstatus.Code(err) == codes.PermissionDenied {
			s.log.Info("kds: zone disabled; closing its stream", "zone", zone)
			stop()
			return
		}
	}
}

// ended is a stream's final status: PermissionDenied when the zone was
// disabled while connected (ctx ended, the stream's own did not).
func (s *Server) ended(ctx context.Context, ss grpc.ServerStream, p *peer, err error) error {
	if ss.Context().Err() == nil && ctx.Err() != nil {
		return grpcstatus.Errorf(codes.PermissionDenied, "zone %q was disabled (Zone %s has enabled: false)", p.zone, p.zone)
	}
	return quiet(err)
}

// quiet turns the end of a stream by its peer into a clean return.
func quiet(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || grpcstatus.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

func (s *Server) recordConnect(ctx context.Context, p *peer) {
	err := insights.ZoneConnected(ctx, s.st, p.zone, insights.ZoneConnection{
		SubscriptionID: p.session, GlobalInstanceID: s.instanceID, ZoneInstanceID: p.instance,
		Version:           insights.CPVersion{Version: p.version, KumaCpGlobalCompatible: true},
		AuthTokenProvided: true,
	})
	if err != nil {
		s.log.Warn("kds: recording the zone's connection", "zone", p.zone, "error", err)
	}
}

func (s *Server) recordDisconnect(p *peer, stats *Stats) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.writeStats(ctx, p, stats)
	if err := insights.ZoneDisconnected(ctx, s.st, p.zone, p.session); err != nil {
		s.log.Warn("kds: recording the zone's disconnection", "zone", p.zone, "error", err)
	}
}

// writeStats copies the session's counters (both streams) into its
// subscription of the zone insight, in one write.
func (s *Server) writeStats(ctx context.Context, p *peer, stats *Stats) {
	snap, _ := stats.Snapshot()
	err := insights.UpdateZone(ctx, s.st, p.zone, func(zi *insights.ZoneInsight) {
		for i := range zi.Subscriptions {
			sub := &zi.Subscriptions[i]
			if sub.ID != p.session {
				continue
			}
			sub.Status.LastUpdateTime = snap.LastUpdateTime.UTC()
			sub.Status.Total = insights.KDSStats(snap.Total)
			sub.Status.Stat = make(map[string]*insights.KDSStats, len(snap.Stat))
			for k, c := range snap.Stat {
				v := insights.KDSStats(c)
				sub.Status.Stat[k] = &v
			}
		}
		zi.HealthCheck = &insights.ZoneHealth{Time: time.Now().UTC()}
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("kds: updating the zone insight", "zone", p.zone, "error", err)
	}
}

// keepInsight writes the session's counters into the zone insight every
// insightInterval while they move, and a health check at least every
// healthInterval.
func (s *Server) keepInsight(ctx context.Context, p *peer, stats *Stats) {
	t := time.NewTicker(insightInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !stats.Changed() && time.Since(last) < healthInterval {
			continue
		}
		s.writeStats(ctx, p, stats)
		last = time.Now()
	}
}
