package k8s

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Watch streams change events of every kind until ctx ends. It opens one
// API-server watch per object type, each from the resourceVersion of a list
// made before Watch returns, so no change after the call is missed. When
// any of them ends (the API server expired it, or the connection broke) the
// channel is closed and the caller lists and watches anew.
func (s *Store) Watch(ctx context.Context) (<-chan store.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	var watchers []watch.Interface
	var ms []*mapping
	for _, m := range s.allMappings() {
		w, err := s.watchOne(ctx, m)
		if err != nil {
			cancel()
			for _, w := range watchers {
				w.Stop()
			}
			return nil, err
		}
		watchers = append(watchers, w)
		ms = append(ms, m)
	}
	out := make(chan store.Event, 256)
	var wg sync.WaitGroup
	for i, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // one watch ending ends them all
			defer w.Stop()
			s.forward(ctx, ms[i], w, out)
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

func (s *Store) watchOne(ctx context.Context, m *mapping) (watch.Interface, error) {
	var opts metav1.ListOptions
	ri := s.client.Resource(m.gvr)
	switch m.flavor {
	case flavorSecret:
		opts.FieldSelector = "type=" + m.secretType
	case flavorConfigMap:
		opts.LabelSelector = labelFallback + "=true"
	}
	if m.flavor != flavorCRD {
		l, err := ri.Namespace(s.systemNS).List(ctx, metav1.ListOptions{FieldSelector: opts.FieldSelector, LabelSelector: opts.LabelSelector, Limit: 1})
		if err != nil {
			return nil, wrap("list", m, location{namespace: s.systemNS}, err)
		}
		opts.ResourceVersion = l.GetResourceVersion()
		w, err := ri.Namespace(s.systemNS).Watch(ctx, opts)
		if err != nil {
			return nil, wrap("watch", m, location{namespace: s.systemNS}, err)
		}
		return w, nil
	}
	l, err := ri.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return nil, wrap("list", m, location{}, err)
	}
	opts.ResourceVersion = l.GetResourceVersion()
	w, err := ri.Watch(ctx, opts)
	if err != nil {
		return nil, wrap("watch", m, location{}, err)
	}
	return w, nil
}

// forward turns one API-server watch into store events until it ends.
func (s *Store) forward(ctx context.Context, m *mapping, w watch.Interface, out chan<- store.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			var op store.Op
			switch ev.Type {
			case watch.Added:
				op = store.OpCreate
			case watch.Modified:
				op = store.OpUpdate
			case watch.Deleted:
				op = store.OpDelete
			case watch.Bookmark:
				continue
			default: // watch.Error: expired or broken
				s.log.Info("kubernetes store: watch ended; listeners relist", "resource", m.gvr.Resource, "event", fmt.Sprint(ev.Object))
				return
			}
			o, isObj := ev.Object.(*unstructured.Unstructured)
			if !isObj {
				continue
			}
			e := store.Event{Op: op, Kind: m.kind, Version: o.GetResourceVersion()}
			if m.flavor == flavorConfigMap {
				e.Kind = o.GetAnnotations()[annKind]
			}
			e.Name, e.Mesh = s.keyOf(m, o)
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}
}
