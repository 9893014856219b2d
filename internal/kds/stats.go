package kds

import (
	"strings"
	"sync"
	"time"
)

// Stats counts what one stream sent, received, acknowledged and refused,
// per type, for the zone insight. A nil *Stats counts nothing.
type Stats struct {
	mu      sync.Mutex
	total   Counters
	byType  map[string]*Counters
	last    time.Time
	lastErr string
	changed bool
}

// Counters are KDS message counts, as Kuma's ZoneInsight reports them.
type Counters struct {
	ResponsesSent         uint64 `json:"responsesSent"`
	ResponsesAcknowledged uint64 `json:"responsesAcknowledged"`
	ResponsesRejected     uint64 `json:"responsesRejected"`
}

// StatsSnapshot is a copy of the counters at one moment.
type StatsSnapshot struct {
	LastUpdateTime time.Time           `json:"lastUpdateTime"`
	Total          Counters            `json:"total"`
	Stat           map[string]Counters `json:"stat,omitempty"`
	LastError      string              `json:"lastError,omitempty"`
}

// NewStats returns zeroed counters.
func NewStats() *Stats { return &Stats{byType: map[string]*Counters{}} }

func (s *Stats) bump(typ string, f func(*Counters)) {
	if s == nil {
		return
	}
	if k, ok := KindOf(typ); ok {
		typ = k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byType[typ]
	if c == nil {
		c = &Counters{}
		s.byType[typ] = c
	}
	f(c)
	f(&s.total)
	s.last = time.Now()
	s.changed = true
}

func (s *Stats) sent(typ string) { s.bump(typ, func(c *Counters) { c.ResponsesSent++ }) }

func (s *Stats) acked(typ string) { s.bump(typ, func(c *Counters) { c.ResponsesAcknowledged++ }) }

func (s *Stats) rejected(typ, msg string) {
	s.bump(typ, func(c *Counters) { c.ResponsesRejected++ })
	if s != nil {
		s.mu.Lock()
		s.lastErr = strings.TrimSpace(msg)
		s.mu.Unlock()
	}
}

// Changed reports whether anything moved since the last Snapshot.
func (s *Stats) Changed() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Snapshot copies the counters; changed tells whether anything moved
// since the previous Snapshot.
func (s *Stats) Snapshot() (snap StatsSnapshot, changed bool) {
	if s == nil {
		return StatsSnapshot{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap = StatsSnapshot{LastUpdateTime: s.last, Total: s.total, LastError: s.lastErr, Stat: map[string]Counters{}}
	for k, c := range s.byType {
		snap.Stat[k] = *c
	}
	changed, s.changed = s.changed, false
	return snap, changed
}
