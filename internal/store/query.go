package store

import (
	"sort"
	"strings"
)

// Matches reports whether r satisfies q's kind, mesh, name and label
// filters (not Offset/Limit). Stores that filter in memory use it.
func (q Query) Matches(r *Record) bool {
	if r.Kind != q.Kind {
		return false
	}
	if q.Mesh != "" && r.Mesh != q.Mesh {
		return false
	}
	if q.NameContains != "" && !strings.Contains(r.Name, q.NameContains) {
		return false
	}
	for k, v := range q.Labels {
		if got, ok := r.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// SortRecords orders records by name, then mesh: the order of every List.
func SortRecords(rs []*Record) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Name != rs[j].Name {
			return rs[i].Name < rs[j].Name
		}
		return rs[i].Mesh < rs[j].Mesh
	})
}

// Paginate applies Offset and Limit to a sorted, filtered list.
func (q Query) Paginate(all []*Record) *Page {
	p := &Page{Total: len(all)}
	start := min(max(q.Offset, 0), len(all))
	end := len(all)
	if q.Limit > 0 && start+q.Limit < end {
		end = start + q.Limit
	}
	p.Items = all[start:end]
	return p
}
