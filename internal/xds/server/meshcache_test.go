package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/insights"
)

// connectionState agrees with DataplaneInsight.Online.
func TestConnectionStateIsOnline(t *testing.T) {
	now := time.Now()
	cases := []insights.DataplaneInsight{
		{},
		{Subscriptions: []insights.Subscription{{ID: "a"}}},
		{Subscriptions: []insights.Subscription{{ID: "a", DisconnectTime: &now}}},
		{Subscriptions: []insights.Subscription{{ID: "a", DisconnectTime: &now}, {ID: "b"}}},
		{Subscriptions: []insights.Subscription{{ID: "a"}, {ID: "b", DisconnectTime: &now}}, RegisteredByProxy: true},
	}
	for i, in := range cases {
		spec, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		n, online, err := connectionState(spec)
		if err != nil || n != len(in.Subscriptions) || online != in.Online() {
			t.Errorf("case %d: %d subscriptions, online %v (%v); want %d, %v", i, n, online, err, len(in.Subscriptions), in.Online())
		}
	}
	if n, online, err := connectionState(nil); n != 0 || online || err != nil {
		t.Errorf("no record: %d, %v, %v", n, online, err)
	}
}
