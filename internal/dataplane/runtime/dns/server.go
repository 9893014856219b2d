package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Limits of a server.
const (
	// maxTCPConns bounds the open TCP connections; more are closed.
	maxTCPConns = 128
	// tcpIdleTimeout closes a TCP connection that sends no query.
	tcpIdleTimeout = 10 * time.Second
	// writeTimeout bounds writing one reply.
	writeTimeout = 5 * time.Second
)

// Server is one DNS listener: a UDP and a TCP socket on one address.
type Server struct {
	addr netip.AddrPort
	udp  *net.UDPConn
	tcp  *net.TCPListener
	up   *upstream
	log  *slog.Logger

	state   atomic.Pointer[state]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	tcpSlot chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// state is one configuration and the slots of its forwarded queries.
type state struct {
	cfg     *Config
	pending chan struct{}
}

// Listen binds UDP and TCP on addr (with port 0, on one free port for
// both). The server answers nothing until Start.
func Listen(addr netip.AddrPort) (*Server, error) {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), bound.Port())))
		if err != nil {
			udp.Close()
			if addr.Port() == 0 && attempt < 10 {
				continue // that free UDP port is a busy TCP port: another
			}
			return nil, fmt.Errorf("listening on tcp %s: %w", bound, err)
		}
		return &Server{addr: netip.AddrPortFrom(addr.Addr().Unmap(), bound.Port()), udp: udp, tcp: tcp,
			tcpSlot: make(chan struct{}, maxTCPConns), conns: map[net.Conn]bool{}}, nil
	}
}

// Addr returns the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Start serves cfg, forwarding with up, until Close.
func (s *Server) Start(cfg *Config, up *upstream, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.up, s.log = up, log.With("listener", cfg.Name)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.SetConfig(cfg)
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
}

// SetConfig swaps the configuration in: queries read after it use cfg.
func (s *Server) SetConfig(cfg *Config) {
	s.state.Store(&state{cfg: cfg, pending: make(chan struct{}, max(cfg.MaxPending, 1))})
}

// Config returns the configuration served.
func (s *Server) Config() *Config { return s.state.Load().cfg }

// Close closes the sockets and open connections and waits for the
// queries in flight.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.udp.Close()
	s.tcp.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) exchange(st *state) exchanger {
	return func(ctx context.Context, query []byte, tcp bool) ([]byte, error) {
		if s.up == nil {
			return nil, errNoResolvers
		}
		return s.up.exchange(ctx, query, tcp, st.cfg.ResolverTimeout)
	}
}

// serveUDP answers datagrams: local answers in the read loop, forwarded
// queries on a goroutine each, at most MaxPending at once (SERVFAIL
// beyond).
func (s *Server) serveUDP() {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("reading a DNS query", "err", err)
			continue
		}
		st := s.state.Load()
		// A copy: the parsed query outlives the buffer when forwarded.
		msg := append([]byte(nil), buf[:n]...)
		d := decide(st.cfg, msg, false)
		if !d.forward {
			s.writeUDP(d.resp, from)
			continue
		}
		select {
		case st.pending <- struct{}{}:
		default:
			st.cfg.stats.overflow.Inc()
			s.writeUDP(finishForward(st.cfg, d, nil, errors.New("too many pending lookups")), from)
			continue
		}
		s.wg.Go(func() {
			defer func() { <-st.pending }()
			resp, err := s.exchange(st)(s.ctx, msg, false)
			s.writeUDP(finishForward(st.cfg, d, resp, err), from)
		})
	}
}

func (s *Server) writeUDP(resp []byte, to netip.AddrPort) {
	if resp == nil {
		return
	}
	if _, err := s.udp.WriteToUDPAddrPort(resp, to); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("writing a DNS reply", "to", to.String(), "err", err)
	}
}

// serveTCP accepts connections, at most maxTCPConns at once.
func (s *Server) serveTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accepting a DNS connection", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case s.tcpSlot <- struct{}{}:
		default:
			c.Close() // too many connections
			continue
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
				<-s.tcpSlot
			}()
			s.serveConn(c)
		})
	}
}

// serveConn answers the queries of one TCP connection in turn.
func (s *Server) serveConn(c net.Conn) {
	for s.ctx.Err() == nil {
		_ = c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		msg, err := readTCPMessage(c)
		if err != nil {
			return
		}
		st := s.state.Load()
		d := decide(st.cfg, msg, true)
		resp := d.resp
		if d.forward {
			select {
			case st.pending <- struct{}{}:
				up, err := s.exchange(st)(s.ctx, msg, true)
				<-st.pending
				resp = finishForward(st.cfg, d, up, err)
			default:
				st.cfg.stats.overflow.Inc()
				resp = finishForward(st.cfg, d, nil, errors.New("too many pending lookups"))
			}
		}
		if resp == nil {
			return // nothing to say to a client that sends garbage
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
