// Feed parsing and the seen-id set (the same rules as assemblyscript/poller/assembly/feed.ts):
// JSON feeds {"items":[{"id","title"}]} (no id: url, then title), RSS 2.0 <item>s (<guid>, else
// <link>, else <title>; CDATA and XML entities decoded; a small scan, not an XML parser). Seen
// keys are kept one a line in the Extism variable "seen-ids": the id, or "~" + FNV-1a 64 hex
// when it is over 100 UTF-8 bytes or spans lines (at most 101 bytes a key), at most 500 keys:
// 50,500 bytes, under the default variable limit of 65,536 bytes.
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

const (
	seenVar     = "seen-ids"
	maxIDs      = 500
	maxKeyBytes = 100
)

type feedItem struct {
	ID, Title, Key string
}

func newItem(id, title string) feedItem { return feedItem{id, title, itemKey(id)} }

// sniff returns "json", "rss", or "" (the content type is a fallback).
func sniff(body, contentType string) string {
	t := strings.TrimLeft(body, " \t\r\n\ufeff")
	switch {
	case strings.HasPrefix(t, "{"):
		return "json"
	case strings.HasPrefix(t, "<"):
		return "rss"
	}
	ct := strings.ToLower(contentType)
	switch {
	case strings.Contains(ct, "json"):
		return "json"
	case strings.Contains(ct, "xml"), strings.Contains(ct, "rss"):
		return "rss"
	}
	return ""
}

func scalarText(raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strings.TrimSpace(string(raw))
	}
	return ""
}

// parseJSONFeed returns the items, or ok=false when body is not {"items":[…]}. (A typed
// decode: members other than id, url and title are skipped, not kept.)
func parseJSONFeed(body string) ([]feedItem, bool) {
	var doc struct {
		Items *[]struct {
			ID    json.RawMessage `json:"id"`
			URL   json.RawMessage `json:"url"`
			Title json.RawMessage `json:"title"`
		} `json:"items"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil || doc.Items == nil {
		return nil, false
	}
	var out []feedItem
	for _, item := range *doc.Items {
		var title string
		_ = json.Unmarshal(item.Title, &title)
		title = strings.TrimSpace(title)
		id := scalarText(item.ID)
		if id == "" {
			id = scalarText(item.URL)
		}
		if id == "" {
			id = title
		}
		if id != "" {
			out = append(out, newItem(id, title))
		}
	}
	return out, true
}

func parseRSS(body string) []feedItem {
	var out []feedItem
	pos := 0
	for {
		open := findOpenTag(body, "item", pos)
		if open < 0 {
			break
		}
		gt := strings.IndexByte(body[open:], '>')
		if gt < 0 {
			break
		}
		gt += open
		if body[gt-1] == '/' {
			pos = gt + 1
			continue
		}
		end := strings.Index(body[gt+1:], "</item>")
		if end < 0 {
			break
		}
		end += gt + 1
		inner := body[gt+1 : end]
		pos = end + 7
		title := elementText(inner, "title")
		id := elementText(inner, "guid")
		if id == "" {
			id = elementText(inner, "link")
		}
		if id == "" {
			id = title
		}
		if id != "" {
			out = append(out, newItem(id, title))
		}
	}
	return out
}

func findOpenTag(s, name string, from int) int {
	needle := "<" + name
	for at := from; ; {
		i := strings.Index(s[at:], needle)
		if i < 0 {
			return -1
		}
		start := at + i
		next := start + len(needle)
		if next < len(s) && strings.IndexByte(">/ \t\n\r", s[next]) >= 0 {
			return start
		}
		at = next
	}
}

func elementText(s, name string) string {
	open := findOpenTag(s, name, 0)
	if open < 0 {
		return ""
	}
	gt := strings.IndexByte(s[open:], '>')
	if gt < 0 {
		return ""
	}
	gt += open
	if s[gt-1] == '/' {
		return ""
	}
	end := strings.Index(s[gt+1:], "</"+name+">")
	if end < 0 {
		return ""
	}
	return strings.TrimSpace(xmlText(s[gt+1 : gt+1+end]))
}

func xmlText(raw string) string {
	var b strings.Builder
	for {
		i := strings.Index(raw, "<![CDATA[")
		if i < 0 {
			b.WriteString(decodeEntities(raw))
			return b.String()
		}
		b.WriteString(decodeEntities(raw[:i]))
		after := raw[i+9:]
		j := strings.Index(after, "]]>")
		if j < 0 {
			b.WriteString(after)
			return b.String()
		}
		b.WriteString(after[:j])
		raw = after[j+3:]
	}
}

func decodeEntities(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for {
		amp := strings.IndexByte(s, '&')
		if amp < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:amp])
		tail := s[amp:]
		semi := strings.IndexByte(tail, ';')
		rep := ""
		if semi > 0 && semi <= 10 {
			name := tail[1:semi]
			switch {
			case name == "amp":
				rep = "&"
			case name == "lt":
				rep = "<"
			case name == "gt":
				rep = ">"
			case name == "quot":
				rep = `"`
			case name == "apos":
				rep = "'"
			case strings.HasPrefix(name, "#x") || strings.HasPrefix(name, "#X"):
				rep = codePoint(name[2:], 16)
			case strings.HasPrefix(name, "#"):
				rep = codePoint(name[1:], 10)
			}
		}
		if rep == "" {
			b.WriteByte('&')
			s = tail[1:]
		} else {
			b.WriteString(rep)
			s = tail[semi+1:]
		}
	}
}

func codePoint(digits string, base int) string {
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil || n == 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff) {
		return ""
	}
	return string(rune(n))
}

// itemKey is what the seen set stores for an id.
func itemKey(id string) string {
	if len(id) <= maxKeyBytes && !strings.ContainsAny(id, "\r\n") {
		return id
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return fmt.Sprintf("~%016x", h.Sum64())
}

// firstDistinct keeps the first 500 items with distinct keys, in feed order.
func firstDistinct(items []feedItem) []feedItem {
	keys := map[string]bool{}
	var out []feedItem
	for _, it := range items {
		if len(out) >= maxIDs {
			break
		}
		if !keys[it.Key] {
			keys[it.Key] = true
			out = append(out, it)
		}
	}
	return out
}

// nextSeen is what to remember: the items' keys, then previously remembered ones, at most 500.
func nextSeen(items []feedItem, previous []string) []string {
	keys := map[string]bool{}
	var out []string
	for _, it := range items {
		keys[it.Key] = true
		out = append(out, it.Key)
	}
	for _, k := range previous {
		if len(out) >= maxIDs {
			break
		}
		if k != "" && !keys[k] {
			keys[k] = true
			out = append(out, k)
		}
	}
	return out
}
