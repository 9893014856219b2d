package build

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
	"github.com/trellis-mesh/trellis/internal/policy"
)

// decodeShared and mergeShared give what policy.Decode and policy.Merge
// give, from concurrent callers, for confs seen before or not, and past
// the caches' limit.
func TestConfCaches(t *testing.T) {
	confs := make([]json.RawMessage, 0, confCacheLimit+100)
	for i := range cap(confs) {
		confs = append(confs, json.RawMessage(fmt.Sprintf(`{"idleTimeout":"%ds","http":{"requestTimeout":"%dms"}}`, i%50+1, i)))
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i, c := range confs {
				want, err := policy.Decode[meshtimeout.Conf](c)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := decodeShared[meshtimeout.Conf](c)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("worker %d, conf %d: decodeShared %+v, want %+v", w, i, got, want)
					return
				}
				pair := []json.RawMessage{confs[(i+w)%len(confs)], c, json.RawMessage(`{"http":null}`)}
				wantMerged, err := policy.Merge(pair...)
				if err != nil {
					t.Error(err)
					return
				}
				gotMerged, err := mergeShared(pair)
				if err != nil {
					t.Error(err)
					return
				}
				if string(gotMerged) != string(wantMerged) {
					t.Errorf("worker %d, conf %d: mergeShared %s, want %s", w, i, gotMerged, wantMerged)
					return
				}
			}
		})
	}
	wg.Wait()
	// The key of a merge keeps the confs apart and in order.
	for _, c := range [][]json.RawMessage{
		{json.RawMessage(`{"a":1}`), json.RawMessage(`{"a":null}`)},
		{json.RawMessage(`{"a":1}{"a":null}`)},
		{json.RawMessage(`{"a":null}`), json.RawMessage(`{"a":1}`)},
	} {
		want, wantErr := policy.Merge(c...)
		got, err := mergeShared(c)
		if string(got) != string(want) || (err == nil) != (wantErr == nil) {
			t.Errorf("mergeShared(%s) = %s, %v; want %s, %v", c, got, err, want, wantErr)
		}
	}
	// A conf of another type is decoded again, not taken from the cache.
	type other struct {
		IdleTimeout string `json:"idleTimeout"`
	}
	o, err := decodeShared[other](confs[0])
	if err != nil || o.IdleTimeout != "1s" {
		t.Errorf("decodeShared[other] = %+v, %v", o, err)
	}
	if _, err := decodeShared[meshtimeout.Conf](json.RawMessage(`{"idleTimeout":5}`)); err == nil {
		t.Error("decodeShared accepted a number for a duration")
	}
}
