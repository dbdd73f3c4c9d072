// A small JSON value type for Hourglass guests (AssemblyScript has no built-in JSON).
//
// Enough for the guest ABI: parse the run context and host responses, build requests and
// run results. Numbers keep the text they were parsed from, so values read from the host
// are written back exactly; `jsonRaw()` embeds already-serialised JSON verbatim (e.g. a
// host response). Strings are UTF-16 inside AssemblyScript; write output as UTF-8
// (see `writeOutput` in io.ts).

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
  /** Pre-serialised JSON text, written out verbatim by `stringify()`. */
  Raw = 6,
}

const MAX_DEPTH = 128;

export class Json {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  /** String value; a number's source text; or the text of a Raw value. */
  text: string = '';
  /** Array items, or object member values (parallel to `keys`). */
  items: Json[] = [];
  keys: string[] = [];

  /** Parses `src`; returns null when it is not a single valid JSON value. */
  static parse(src: string): Json | null {
    const p = new Parser(src);
    const v = p.value(0);
    p.ws();
    return v !== null && p.pos == src.length ? v : null;
  }

  isNull(): bool {
    return this.kind == JsonKind.Null;
  }
  isString(): bool {
    return this.kind == JsonKind.String;
  }
  isObject(): bool {
    return this.kind == JsonKind.Object;
  }
  isArray(): bool {
    return this.kind == JsonKind.Array;
  }

  /** Object member `key`, or a JSON null when absent or when this is not an object. */
  get(key: string): Json {
    const i = this.indexOf(key);
    return i < 0 ? jsonNull() : this.items[i];
  }
  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }
  /** Sets (or replaces) an object member; returns this for chaining. */
  set(key: string, value: Json): Json {
    const i = this.indexOf(key);
    if (i >= 0) {
      this.items[i] = value;
    } else {
      this.keys.push(key);
      this.items.push(value);
    }
    return this;
  }
  /** Appends an array item; returns this for chaining. */
  push(value: Json): Json {
    this.items.push(value);
    return this;
  }
  /** Array item `i`, or a JSON null. */
  at(i: i32): Json {
    return this.kind == JsonKind.Array && i >= 0 && i < this.items.length
      ? this.items[i]
      : jsonNull();
  }
  get length(): i32 {
    return this.items.length;
  }

  asString(fallback: string = ''): string {
    return this.kind == JsonKind.String ? this.text : fallback;
  }
  asNumber(fallback: f64 = 0): f64 {
    return this.kind == JsonKind.Number ? this.num : fallback;
  }
  asInt(fallback: i64 = 0): i64 {
    return this.kind == JsonKind.Number ? <i64>this.num : fallback;
  }
  asBool(fallback: bool = false): bool {
    return this.kind == JsonKind.Bool ? this.bool : fallback;
  }

  stringify(): string {
    const out: string[] = [];
    this.write(out);
    return out.join('');
  }

  private indexOf(key: string): i32 {
    if (this.kind != JsonKind.Object) return -1;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return i;
    return -1;
  }

  private write(out: string[]): void {
    switch (this.kind) {
      case JsonKind.Null:
        out.push('null');
        break;
      case JsonKind.Bool:
        out.push(this.bool ? 'true' : 'false');
        break;
      case JsonKind.Number:
        out.push(this.text.length > 0 ? this.text : formatNumber(this.num));
        break;
      case JsonKind.String:
        out.push(quote(this.text));
        break;
      case JsonKind.Raw:
        out.push(this.text);
        break;
      case JsonKind.Array:
        out.push('[');
        for (let i = 0; i < this.items.length; i++) {
          if (i > 0) out.push(',');
          this.items[i].write(out);
        }
        out.push(']');
        break;
      default:
        out.push('{');
        for (let i = 0; i < this.keys.length; i++) {
          if (i > 0) out.push(',');
          out.push(quote(this.keys[i]));
          out.push(':');
          this.items[i].write(out);
        }
        out.push('}');
    }
  }
}

export function jsonNull(): Json {
  return new Json();
}
export function jsonBool(b: bool): Json {
  const v = new Json();
  v.kind = JsonKind.Bool;
  v.bool = b;
  return v;
}
export function jsonNumber(n: f64): Json {
  const v = new Json();
  v.kind = JsonKind.Number;
  v.num = n;
  return v;
}
export function jsonInt(n: i64): Json {
  return jsonNumber(<f64>n);
}
export function jsonString(s: string): Json {
  const v = new Json();
  v.kind = JsonKind.String;
  v.text = s;
  return v;
}
export function jsonArray(): Json {
  const v = new Json();
  v.kind = JsonKind.Array;
  return v;
}
export function jsonObject(): Json {
  const v = new Json();
  v.kind = JsonKind.Object;
  return v;
}
/** Embeds already-serialised JSON text as is (it is not checked). */
export function jsonRaw(text: string): Json {
  const v = new Json();
  v.kind = JsonKind.Raw;
  v.text = text;
  return v;
}

function formatNumber(n: f64): string {
  if (!isFinite(n)) return 'null';
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992) return (<i64>n).toString();
  return n.toString();
}

const HEX = '0123456789abcdef';

function quote(s: string): string {
  const out: string[] = ['"'];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    if (i > start) out.push(s.substring(start, i));
    start = i + 1;
    if (c == 0x22) out.push('\\"');
    else if (c == 0x5c) out.push('\\\\');
    else if (c == 0x0a) out.push('\\n');
    else if (c == 0x0d) out.push('\\r');
    else if (c == 0x09) out.push('\\t');
    else out.push('\\u00' + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
  }
  if (start < s.length) out.push(s.substring(start));
  out.push('"');
  return out.join('');
}

class Parser {
  src: string;
  pos: i32 = 0;

  constructor(src: string) {
    this.src = src;
  }

  ws(): void {
    while (this.pos < this.src.length) {
      const c = this.src.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.pos++;
    }
  }

  value(depth: i32): Json | null {
    this.ws();
    if (this.pos >= this.src.length || depth > MAX_DEPTH) return null;
    const c = this.src.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      return s === null ? null : jsonString(s);
    }
    if (this.literal('true')) return jsonBool(true);
    if (this.literal('false')) return jsonBool(false);
    if (this.literal('null')) return jsonNull();
    return this.number();
  }

  literal(word: string): bool {
    if (this.src.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  object(depth: i32): Json | null {
    const obj = jsonObject();
    this.pos++; // {
    this.ws();
    if (this.eat(0x7d)) return obj;
    while (true) {
      this.ws();
      if (this.pos >= this.src.length || this.src.charCodeAt(this.pos) != 0x22) return null;
      const key = this.string();
      if (key === null) return null;
      this.ws();
      if (!this.eat(0x3a)) return null;
      const v = this.value(depth + 1);
      if (v === null) return null;
      obj.set(key, v);
      this.ws();
      if (this.eat(0x7d)) return obj;
      if (!this.eat(0x2c)) return null;
    }
  }

  array(depth: i32): Json | null {
    const arr = jsonArray();
    this.pos++; // [
    this.ws();
    if (this.eat(0x5d)) return arr;
    while (true) {
      const v = this.value(depth + 1);
      if (v === null) return null;
      arr.push(v);
      this.ws();
      if (this.eat(0x5d)) return arr;
      if (!this.eat(0x2c)) return null;
    }
  }

  eat(c: i32): bool {
    if (this.pos < this.src.length && this.src.charCodeAt(this.pos) == c) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** Reads a quoted string starting at the opening quote. */
  string(): string | null {
    const src = this.src;
    const out: string[] = [];
    let start = ++this.pos;
    while (this.pos < src.length) {
      const c = src.charCodeAt(this.pos);
      if (c == 0x22) {
        out.push(src.substring(start, this.pos++));
        return out.join('');
      }
      if (c < 0x20) return null;
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out.push(src.substring(start, this.pos));
      if (this.pos + 1 >= src.length) return null;
      const e = src.charCodeAt(this.pos + 1);
      this.pos += 2;
      if (e == 0x22 || e == 0x5c || e == 0x2f) out.push(String.fromCharCode(e));
      else if (e == 0x6e) out.push('\n');
      else if (e == 0x74) out.push('\t');
      else if (e == 0x72) out.push('\r');
      else if (e == 0x62) out.push('\b');
      else if (e == 0x66) out.push('\f');
      else if (e == 0x75) {
        let code = 0;
        for (let k = 0; k < 4; k++) {
          const h = this.pos < src.length ? hexValue(src.charCodeAt(this.pos++)) : -1;
          if (h < 0) return null;
          code = (code << 4) | h;
        }
        out.push(String.fromCharCode(code));
      } else return null;
      start = this.pos;
    }
    return null;
  }

  number(): Json | null {
    const src = this.src;
    const begin = this.pos;
    this.eat(0x2d); // -
    if (this.eat(0x30)) {
      // a single leading zero
    } else if (this.digits() == 0) return null;
    if (this.eat(0x2e) && this.digits() == 0) return null;
    if (this.eat(0x65) || this.eat(0x45)) {
      if (!this.eat(0x2b)) this.eat(0x2d);
      if (this.digits() == 0) return null;
    }
    const v = jsonNumber(parseFloat(src.substring(begin, this.pos)));
    v.text = src.substring(begin, this.pos);
    return v;
  }

  digits(): i32 {
    const begin = this.pos;
    while (this.pos < this.src.length) {
      const c = this.src.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos - begin;
  }
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
