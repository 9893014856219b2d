package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// nackWidth is how much of the last NACK's error the table shows.
const nackWidth = 40

// printOverviewTable prints dataplane overviews, one proxy a row, with the
// state of its newest xDS stream.
func printOverviewTable(w io.Writer, items []json.RawMessage, now time.Time) error {
	ago := func(ts string) string {
		if a := age(ts, now); a != "-" {
			return a + " ago"
		}
		return ""
	}
	cols := []column{
		{"MESH", func(o map[string]any) string { return str(o, "mesh") }},
		{"NAME", func(o map[string]any) string { return str(o, "name") }},
		{"STATUS", func(o map[string]any) string { return proxyStatus(lastSubscription(o)) }},
		{"LAST CONNECTED", func(o map[string]any) string {
			if sub := lastSubscription(o); sub != nil {
				return ago(str(sub, "connectTime"))
			}
			return "never"
		}},
		{"LAST UPDATED", func(o map[string]any) string {
			return ago(str(obj(lastSubscription(o), "status"), "lastUpdateTime"))
		}},
		{"CP INSTANCE", func(o map[string]any) string { return str(lastSubscription(o), "controlPlaneInstanceId") }},
		{"ACKED VERSION", func(o map[string]any) string {
			return str(obj(lastSubscription(o), "status"), "lastAckedVersion")
		}},
		{"NACK", func(o map[string]any) string {
			return shorten(str(obj(obj(lastSubscription(o), "status"), "lastNack"), "error"), nackWidth)
		}},
		{"SERVICES", func(o map[string]any) string { return dataplaneServices(obj(o, "dataplane")) }},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, raw := range items {
		o, err := decodeObject(raw)
		if err != nil {
			return err
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			if cells[i] = c.value(o); cells[i] == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// lastSubscription returns an overview's newest xDS stream, or nil when the
// proxy never connected.
func lastSubscription(overview map[string]any) map[string]any {
	subs := list(obj(overview, "dataplaneInsight"), "subscriptions")
	if len(subs) == 0 {
		return nil
	}
	sub, _ := subs[len(subs)-1].(map[string]any)
	return sub
}

// proxyStatus is Online while the newest stream has no disconnect time.
func proxyStatus(sub map[string]any) string {
	if sub == nil {
		return "Offline"
	}
	if v, has := sub["disconnectTime"]; has && v != nil && v != "" {
		return "Offline"
	}
	return "Online"
}
