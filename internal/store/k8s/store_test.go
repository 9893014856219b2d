package k8s_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	k8sstore "github.com/trellis-mesh/trellis/internal/store/k8s"
	"github.com/trellis-mesh/trellis/internal/store/storetest"
	"github.com/trellis-mesh/trellis/internal/testing/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

var crdsInstalled atomic.Bool

// env returns the shared API server with the Trellis CRDs installed.
func env(t *testing.T) *envtest.Env {
	t.Helper()
	e := envtest.Shared(t)
	if !crdsInstalled.Load() {
		if err := envtest.InstallCRDs(e.Config); err != nil {
			t.Fatal(err)
		}
		crdsInstalled.Store(true)
	}
	return e
}

var nsCounter atomic.Int64

// newStore returns a store over the shared API server with its own system
// namespace; the cluster-scoped objects every subtest shares are wiped when
// the subtest ends, so each starts empty.
func newStore(t *testing.T) store.Store {
	e := env(t)
	ns := fmt.Sprintf("trellis-test-%d", nsCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := k8sstore.New(ctx, k8sstore.Options{Config: e.Config, SystemNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wipe(t, e, ns) })
	return s
}

// wipe deletes every Trellis object: custom resources of every kind in
// every namespace, and the test namespace's Secrets and ConfigMaps.
func wipe(t *testing.T, e *envtest.Env, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range crd.Infos(kinds.Registry()) {
		gvr := schema.GroupVersionResource{Group: crd.Group, Version: crd.Version, Resource: i.Plural}
		l, err := c.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Errorf("wipe: list %s: %v", i.Plural, err)
			continue
		}
		for _, o := range l.Items {
			var err error
			if o.GetNamespace() == "" {
				err = c.Resource(gvr).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			} else {
				err = c.Resource(gvr).Namespace(o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			}
			if err != nil {
				t.Errorf("wipe: delete %s %s: %v", i.Plural, o.GetName(), err)
			}
		}
	}
	for _, r := range []string{"secrets", "configmaps"} {
		err := c.Resource(schema.GroupVersionResource{Version: "v1", Resource: r}).Namespace(ns).
			DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if err != nil {
			t.Errorf("wipe: %s: %v", r, err)
		}
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}
