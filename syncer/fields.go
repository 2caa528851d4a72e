package syncer

import (
	"encoding/json"
	"strings"
)

// splitFieldPath splits a dot-separated property path (spec appendices
// "Dot-separated property paths"): "." separates, "\." is a literal dot
// and "\\" a literal backslash.
func splitFieldPath(path string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\' && i+1 < len(path) && (path[i+1] == '.' || path[i+1] == '\\'):
			cur.WriteByte(path[i+1])
			i++
		case c == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}

// ProjectFields keeps only the listed fields of an event (the filter's
// event_fields). An empty list keeps everything. A path that names
// something absent, or walks into a non-object, selects nothing.
func ProjectFields(raw json.RawMessage, fields []string) (json.RawMessage, error) {
	if len(fields) == 0 {
		return raw, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, path := range fields {
		copyPath(out, ev, splitFieldPath(path))
	}
	return json.Marshal(out)
}

// copyPath copies the value at path from src into dst, creating the
// intermediate objects.
func copyPath(dst, src map[string]any, path []string) {
	v, ok := src[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		dst[path[0]] = v
		return
	}
	child, ok := v.(map[string]any)
	if !ok {
		return
	}
	sub, ok := dst[path[0]].(map[string]any)
	if !ok {
		sub = map[string]any{}
	}
	copyPath(sub, child, path[1:])
	if len(sub) > 0 {
		dst[path[0]] = sub
	}
}
