package ctl

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// document is one YAML document of a multi-document input.
type document struct {
	// index counts documents from 1, skipping empty ones.
	index int
	// line is the 1-based line where the document starts in its source.
	line int
	// source names the file it came from.
	source string
	text   string
}

func (d document) String() string {
	if d.source != "" && d.source != "-" {
		return fmt.Sprintf("document %d (%s, line %d)", d.index, d.source, d.line)
	}
	return fmt.Sprintf("document %d (line %d)", d.index, d.line)
}

// splitDocuments splits YAML on "---" separator lines, dropping documents
// that hold only blank lines and comments.
func splitDocuments(source, data string, first int) []document {
	var docs []document
	var cur []string
	start := 1
	flush := func(next int) {
		text := strings.Join(cur, "\n")
		if !blankYAML(text) {
			docs = append(docs, document{index: first + len(docs), line: start, source: source, text: text + "\n"})
		}
		cur, start = nil, next
	}
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	for i, line := range lines {
		trimmed := strings.TrimRight(line, " \t")
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t") || trimmed == "..." {
			flush(i + 2)
			continue
		}
		cur = append(cur, line)
	}
	flush(len(lines) + 1)
	return docs
}

func blankYAML(text string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// placeholder matches kumactl's template variables: {{ name }}, with
// optional spaces, dotted names (a.b) and mustache's triple braces.
var placeholder = regexp.MustCompile(`\{\{\{?\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*\}?\}\}`)

// render fills the placeholders of text from vars. It returns the names of
// placeholders without a value (ignoring those in comment lines, which are
// left as written), sorted and deduplicated.
func render(text string, vars map[string]string) (string, []string) {
	missing := map[string]bool{}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		comment := strings.HasPrefix(strings.TrimSpace(line), "#")
		lines[i] = placeholder.ReplaceAllStringFunc(line, func(m string) string {
			name := placeholder.FindStringSubmatch(m)[1]
			if v, ok := vars[name]; ok {
				return v
			}
			if !comment {
				missing[name] = true
			}
			return m
		})
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(lines, "\n"), names
}

// parseVars reads -v key=value flags; values may contain '=' and ','.
func parseVars(flags []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: write it as NAME=VALUE", f)
		}
		vars[k] = v
	}
	return vars, nil
}
