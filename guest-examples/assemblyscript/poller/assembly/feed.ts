// Feed parsing and the seen-id set of the poller (used when config `feed_url` is set).
//
// - JSON feeds: `{"items":[{"id":…,"title":…}]}` (an item without `id` uses `url`, then
//   `title`; a numeric id counts as its text).
// - RSS 2.0: a small scan for `<item>…</item>` with `<guid>` (else `<link>`, else `<title>`)
//   and `<title>`, CDATA sections and the XML entities decoded. Not a general XML parser.
// - Seen ids live in the Extism variable `seen-ids`, one key a line. A key is the id, trimmed,
//   or `~` + its FNV-1a 64 hash in hex when it is longer than 100 UTF-8 bytes or spans lines,
//   so a key takes at most 101 bytes with its newline. At most 500 keys are kept (the current
//   feed's first 500 items, then older keys): 500 × 101 = 50,500 bytes, plus the key name and
//   the host's 64 bytes of overhead, stays under the default variable limit of 65,536 bytes.
//   Items past the 500th of one feed are ignored.
// The Rust and Go pollers implement the same rules.

import { Json, JsonKind } from '../../lib/json';

export const SEEN_VAR = 'seen-ids';
export const MAX_IDS = 500;
const MAX_KEY_BYTES = 100;

export class FeedItem {
  /** The item's id as the feed gives it (trimmed). */
  id: string;
  title: string;
  /** What the seen set remembers (see `itemKey`). */
  key: string;

  constructor(id: string, title: string) {
    this.id = id;
    this.title = title;
    this.key = itemKey(id);
  }
}

/** `json`, `rss`, or "" when the body looks like neither (the content type is a fallback). */
export function sniffFormat(body: string, contentType: string | null): string {
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0xfeff) continue;
    if (c == 0x7b) return 'json'; // {
    if (c == 0x3c) return 'rss'; // <
    break;
  }
  if (contentType !== null) {
    const t = contentType.toLowerCase();
    if (t.includes('json')) return 'json';
    if (t.includes('xml') || t.includes('rss')) return 'rss';
  }
  return '';
}

/** The items of a JSON feed, or null when `body` is not `{"items":[…]}`. */
export function parseJsonFeed(body: string): FeedItem[] | null {
  const doc = Json.parse(body);
  if (doc === null || !doc.isObject()) return null;
  const items = doc.get('items');
  if (!items.isArray()) return null;
  const out: FeedItem[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items.at(i);
    const title = item.get('title').asString().trim();
    let id = scalarText(item.get('id'));
    if (id.length == 0) id = scalarText(item.get('url'));
    if (id.length == 0) id = title;
    if (id.length > 0) out.push(new FeedItem(id, title));
  }
  return out;
}

function scalarText(v: Json): string {
  if (v.isString()) return v.asString().trim();
  if (v.kind == JsonKind.Number) return v.stringify();
  return '';
}

/** The `<item>`s of an RSS 2.0 document (items with no guid, link or title are skipped). */
export function parseRss(body: string): FeedItem[] {
  const out: FeedItem[] = [];
  let pos = 0;
  while (true) {
    const open = findOpenTag(body, 'item', pos);
    if (open < 0) break;
    const gt = body.indexOf('>', open);
    if (gt < 0) break;
    if (body.charCodeAt(gt - 1) == 0x2f) {
      pos = gt + 1; // <item/>
      continue;
    }
    const close = body.indexOf('</item>', gt + 1);
    if (close < 0) break;
    const inner = body.substring(gt + 1, close);
    pos = close + 7;
    const title = elementText(inner, 'title');
    let id = elementText(inner, 'guid');
    if (id.length == 0) id = elementText(inner, 'link');
    if (id.length == 0) id = title;
    if (id.length > 0) out.push(new FeedItem(id, title));
  }
  return out;
}

/** Index of `<name` followed by `>`, `/` or whitespace, at or after `from`; -1 if none. */
function findOpenTag(s: string, name: string, from: i32): i32 {
  const needle = '<' + name;
  let at = s.indexOf(needle, from);
  while (at >= 0) {
    const next = at + needle.length;
    if (next < s.length) {
      const c = s.charCodeAt(next);
      if (c == 0x3e || c == 0x2f || c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) return at;
    }
    at = s.indexOf(needle, next);
  }
  return -1;
}

/** The decoded, trimmed text of the first `<name>` element in `s` ("" if absent). */
function elementText(s: string, name: string): string {
  const open = findOpenTag(s, name, 0);
  if (open < 0) return '';
  const gt = s.indexOf('>', open);
  if (gt < 0 || s.charCodeAt(gt - 1) == 0x2f) return '';
  const close = s.indexOf('</' + name + '>', gt + 1);
  if (close < 0) return '';
  return xmlText(s.substring(gt + 1, close)).trim();
}

/** Character data: CDATA sections verbatim, entities decoded elsewhere. */
function xmlText(raw: string): string {
  const out: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const cdata = raw.indexOf('<![CDATA[', pos);
    if (cdata < 0) {
      out.push(decodeEntities(raw.substring(pos)));
      break;
    }
    out.push(decodeEntities(raw.substring(pos, cdata)));
    const end = raw.indexOf(']]>', cdata + 9);
    if (end < 0) {
      out.push(raw.substring(cdata + 9));
      break;
    }
    out.push(raw.substring(cdata + 9, end));
    pos = end + 3;
  }
  return out.join('');
}

function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  const out: string[] = [];
  let pos = 0;
  while (pos < s.length) {
    const amp = s.indexOf('&', pos);
    if (amp < 0) break;
    out.push(s.substring(pos, amp));
    const semi = s.indexOf(';', amp);
    const name = semi > amp && semi - amp <= 10 ? s.substring(amp + 1, semi) : '';
    let rep: string | null = null;
    if (name == 'amp') rep = '&';
    else if (name == 'lt') rep = '<';
    else if (name == 'gt') rep = '>';
    else if (name == 'quot') rep = '"';
    else if (name == 'apos') rep = "'";
    else if (name.startsWith('#')) {
      const hex = name.startsWith('#x') || name.startsWith('#X');
      const code = hex ? parseHex(name.substring(2)) : parseDec(name.substring(1));
      if (code > 0 && code <= 0x10ffff) rep = String.fromCodePoint(code);
    }
    if (rep === null) {
      out.push('&');
      pos = amp + 1;
    } else {
      out.push(rep);
      pos = semi + 1;
    }
  }
  if (pos < s.length) out.push(s.substring(pos));
  return out.join('');
}

function parseDec(s: string): i32 {
  if (s.length == 0 || s.length > 7) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function parseHex(s: string): i32 {
  if (s.length == 0 || s.length > 6) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    let d = -1;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}

const HEX = '0123456789abcdef';

/** What the seen set stores for an id: the id, or `~` + FNV-1a 64 hex when it is long. */
export function itemKey(id: string): string {
  const bytes = Uint8Array.wrap(String.UTF8.encode(id));
  if (bytes.length <= MAX_KEY_BYTES && id.indexOf('\n') < 0 && id.indexOf('\r') < 0) return id;
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < bytes.length; i++) {
    h ^= <u64>bytes[i];
    h *= 0x100000001b3;
  }
  let hex = '~';
  for (let shift = 60; shift >= 0; shift -= 4) hex += HEX.charAt(<i32>((h >> shift) & 15));
  return hex;
}

/** The first 500 items with distinct keys, in feed order. */
export function firstDistinct(items: FeedItem[]): FeedItem[] {
  const keys = new Set<string>();
  const out: FeedItem[] = [];
  for (let i = 0; i < items.length && out.length < MAX_IDS; i++) {
    const k = items[i].key;
    if (!keys.has(k)) {
      keys.add(k);
      out.push(items[i]);
    }
  }
  return out;
}

/**
 * The keys to remember after seeing `items` (distinct, at most 500): theirs first, then the
 * previously remembered keys that are not among them.
 */
export function nextSeen(items: FeedItem[], previous: string[]): string[] {
  const keys = new Set<string>();
  const out: string[] = [];
  for (let i = 0; i < items.length; i++) {
    keys.add(items[i].key);
    out.push(items[i].key);
  }
  for (let i = 0; i < previous.length && out.length < MAX_IDS; i++) {
    const k = previous[i];
    if (k.length > 0 && !keys.has(k)) {
      keys.add(k);
      out.push(k);
    }
  }
  return out;
}
