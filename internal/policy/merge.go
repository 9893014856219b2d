package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Merge folds confs (JSON documents, least specific first) with JSON Merge
// Patch (RFC 7396): each is applied as a patch on the result of the ones
// before it. Objects merge key by key, null deletes a key, anything else
// replaces; lists under a key starting with "append" concatenate instead.
// Empty and null confs are skipped; the result of none is nil. Numbers keep their
// text; object keys come out sorted.
func Merge(confs ...json.RawMessage) (json.RawMessage, error) {
	var acc any
	applied := false
	for i, c := range confs {
		if t := bytes.TrimSpace(c); len(t) == 0 || string(t) == "null" {
			continue
		}
		patch, err := decodeJSON(c)
		if err != nil {
			return nil, fmt.Errorf("conf %d: %w", i, err)
		}
		acc = mergePatch(acc, patch)
		applied = true
	}
	if !applied {
		return nil, nil
	}
	out, err := json.Marshal(acc)
	if err != nil {
		return nil, fmt.Errorf("encoding a merged conf: %w", err)
	}
	return out, nil
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	return v, nil
}

// mergePatch applies patch to target as RFC 7396 says, with the append
// exception for lists; it may reuse parts of both.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		if strings.HasPrefix(k, "append") {
			prev, okPrev := t[k].([]any)
			next, okNext := v.([]any)
			if okPrev && okNext {
				joined := make([]any, 0, len(prev)+len(next))
				t[k] = append(append(joined, prev...), next...)
				continue
			}
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}
