package store

import (
	"context"
	"sync"
)

// WatchBuffer is how many events a watcher may fall behind before its
// channel is closed.
const WatchBuffer = 4096

// Broadcaster fans events out to watchers; store implementations embed it.
type Broadcaster struct {
	mu       sync.Mutex
	watchers map[chan Event]struct{}
}

// Watch registers a watcher that lives until ctx ends.
func (b *Broadcaster) Watch(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, WatchBuffer)
	b.mu.Lock()
	if b.watchers == nil {
		b.watchers = map[chan Event]struct{}{}
	}
	b.watchers[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.remove(ch)
	}()
	return ch, nil
}

func (b *Broadcaster) remove(ch chan Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.watchers[ch]; ok {
		delete(b.watchers, ch)
		close(ch)
	}
}

// Publish sends events, in order, to every watcher. A watcher whose buffer
// is full is dropped and its channel closed, so it knows to resync.
func (b *Broadcaster) Publish(events ...Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.watchers {
		for _, e := range events {
			select {
			case ch <- e:
			default:
				delete(b.watchers, ch)
				close(ch)
			}
			if _, still := b.watchers[ch]; !still {
				break
			}
		}
	}
}

// CloseAll closes every watcher channel (on store Close).
func (b *Broadcaster) CloseAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.watchers {
		delete(b.watchers, ch)
		close(ch)
	}
}
