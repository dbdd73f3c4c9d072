//! Feed parsing and the seen-id set (the same rules as assemblyscript/poller/assembly/feed.ts):
//! JSON feeds `{"items":[{"id","title"}]}` (no `id`: `url`, then `title`), RSS 2.0 `<item>`s
//! (`<guid>`, else `<link>`, else `<title>`; CDATA and XML entities decoded; a small scan, not
//! an XML parser). Seen keys are kept one a line in the Extism variable `seen-ids`: the id, or
//! `~` + FNV-1a 64 hex when it is over 100 UTF-8 bytes or spans lines (so at most 101 bytes a
//! key), at most 500 keys: 50,500 bytes, under the default variable limit of 65,536 bytes.

use hourglass_guest::{serde_json, Value};
use std::collections::HashSet;

pub const SEEN_VAR: &str = "seen-ids";
pub const MAX_IDS: usize = 500;
const MAX_KEY_BYTES: usize = 100;

pub struct Item {
    pub id: String,
    pub title: String,
    pub key: String,
}

impl Item {
    fn new(id: String, title: String) -> Item {
        let key = item_key(&id);
        Item { id, title, key }
    }
}

/// "json", "rss", or "" when the body looks like neither (the content type is a fallback).
pub fn sniff(body: &str, content_type: Option<&str>) -> &'static str {
    match body
        .trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\u{feff}')
        .chars()
        .next()
    {
        Some('{') => return "json",
        Some('<') => return "rss",
        _ => {}
    }
    let t = content_type.unwrap_or("").to_ascii_lowercase();
    if t.contains("json") {
        "json"
    } else if t.contains("xml") || t.contains("rss") {
        "rss"
    } else {
        ""
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The items of a JSON feed, or None when it is not `{"items":[…]}`.
pub fn parse_json(body: &str) -> Option<Vec<Item>> {
    let doc: Value = serde_json::from_str(body).ok()?;
    let items = doc.get("items")?.as_array()?;
    let mut out = Vec::new();
    for item in items {
        let title = item.get("title").and_then(Value::as_str).unwrap_or("").trim().to_string();
        let mut id = scalar_text(item.get("id").unwrap_or(&Value::Null));
        if id.is_empty() {
            id = scalar_text(item.get("url").unwrap_or(&Value::Null));
        }
        if id.is_empty() {
            id = title.clone();
        }
        if !id.is_empty() {
            out.push(Item::new(id, title));
        }
    }
    Some(out)
}

/// The `<item>`s of an RSS 2.0 document.
pub fn parse_rss(body: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(open) = find_open_tag(body, "item", pos) {
        let gt = match body[open..].find('>') {
            Some(i) => open + i,
            None => break,
        };
        if body.as_bytes()[gt - 1] == b'/' {
            pos = gt + 1;
            continue;
        }
        let close = match body[gt + 1..].find("</item>") {
            Some(i) => gt + 1 + i,
            None => break,
        };
        let inner = &body[gt + 1..close];
        pos = close + 7;
        let title = element_text(inner, "title");
        let mut id = element_text(inner, "guid");
        if id.is_empty() {
            id = element_text(inner, "link");
        }
        if id.is_empty() {
            id = title.clone();
        }
        if !id.is_empty() {
            out.push(Item::new(id, title));
        }
    }
    out
}

fn find_open_tag(s: &str, name: &str, from: usize) -> Option<usize> {
    let needle = format!("<{name}");
    let mut at = from;
    while let Some(i) = s[at..].find(&needle) {
        let start = at + i;
        let next = start + needle.len();
        if let Some(&c) = s.as_bytes().get(next) {
            if matches!(c, b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r') {
                return Some(start);
            }
        }
        at = next;
    }
    None
}

fn element_text(s: &str, name: &str) -> String {
    let open = match find_open_tag(s, name, 0) {
        Some(o) => o,
        None => return String::new(),
    };
    let gt = match s[open..].find('>') {
        Some(i) => open + i,
        None => return String::new(),
    };
    if s.as_bytes()[gt - 1] == b'/' {
        return String::new();
    }
    match s[gt + 1..].find(&format!("</{name}>")) {
        Some(i) => xml_text(&s[gt + 1..gt + 1 + i]).trim().to_string(),
        None => String::new(),
    }
}

fn xml_text(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("<![CDATA[") {
        out.push_str(&decode_entities(&rest[..i]));
        let after = &rest[i + 9..];
        match after.find("]]>") {
            Some(j) => {
                out.push_str(&after[..j]);
                rest = &after[j + 3..];
            }
            None => {
                out.push_str(after);
                return out;
            }
        }
    }
    out.push_str(&decode_entities(rest));
    out
}

fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let rep = tail.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &tail[1..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16).ok().and_then(char::from_u32)
                }
                _ if name.starts_with('#') => {
                    name[1..].parse::<u32>().ok().and_then(char::from_u32)
                }
                _ => None,
            };
            c.filter(|&c| c != '\0').map(|c| (c, semi))
        });
        match rep {
            Some((c, semi)) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What the seen set stores for an id.
pub fn item_key(id: &str) -> String {
    if id.len() <= MAX_KEY_BYTES && !id.contains('\n') && !id.contains('\r') {
        return id.to_string();
    }
    let mut h: u64 = 0xcbf29ce484222325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("~{h:016x}")
}

/// The first 500 items with distinct keys, in feed order.
pub fn first_distinct(items: Vec<Item>) -> Vec<Item> {
    let mut keys = HashSet::new();
    items.into_iter().filter(|i| keys.insert(i.key.clone())).take(MAX_IDS).collect()
}

/// The keys to remember: the items' first, then previously remembered ones, at most 500.
pub fn next_seen(items: &[Item], previous: &[&str]) -> Vec<String> {
    let mut keys: HashSet<&str> = items.iter().map(|i| i.key.as_str()).collect();
    let mut out: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    for k in previous {
        if out.len() >= MAX_IDS {
            break;
        }
        if !k.is_empty() && keys.insert(k) {
            out.push(k.to_string());
        }
    }
    out
}
