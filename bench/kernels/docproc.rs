//! The "realistic" fuel benchmark module: a std-only Rust program doing the kind of work a
//! plugin does. Per call it generates a JSON document (records with strings, numbers, nested
//! arrays), serializes it, parses it back into a tree, aggregates over the tree, re-serializes
//! it, LZ77-compresses the text with hash chains, decompresses it and checks the round trip.
//! Built at bench time: rustc --target wasm32-unknown-unknown -O --crate-type cdylib.
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(BTreeMap<String, Value>),
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa \"quoted\"\n",
];

fn gen_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => Value::Num(rng.below(1_000_000) as f64 / 100.0 - 2500.0),
        3 => {
            let mut s = String::new();
            for i in 0..(1 + rng.below(4)) {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(WORDS[rng.below(16) as usize]);
            }
            Value::Str(s)
        }
        4 | 5 => Value::Arr((0..rng.below(6)).map(|_| gen_value(rng, depth + 1)).collect()),
        _ => {
            let mut m = BTreeMap::new();
            for _ in 0..rng.below(6) {
                let k = format!("{}{}", WORDS[rng.below(15) as usize], rng.below(100));
                m.insert(k, gen_value(rng, depth + 1));
            }
            Value::Obj(m)
        }
    }
}

fn gen_doc(rng: &mut Rng, records: u32) -> Value {
    let mut list = Vec::new();
    for id in 0..records {
        let mut m = BTreeMap::new();
        m.insert("id".to_string(), Value::Num(id as f64));
        m.insert("name".to_string(), Value::Str(format!("record-{}-{}", id, WORDS[(id % 15) as usize])));
        m.insert("score".to_string(), Value::Num(rng.below(100_000) as f64 / 7.0));
        m.insert("active".to_string(), Value::Bool(rng.below(3) != 0));
        m.insert("payload".to_string(), gen_value(rng, 0));
        list.push(Value::Obj(m));
    }
    let mut root = BTreeMap::new();
    root.insert("version".to_string(), Value::Num(3.0));
    root.insert("records".to_string(), Value::Arr(list));
    Value::Obj(root)
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn serialize(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) => {
            let _ = write!(out, "{}", n);
        }
        Value::Str(s) => write_str(out, s),
        Value::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serialize(x, out);
            }
            out.push(']');
        }
        Value::Obj(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                serialize(x, out);
            }
            out.push('}');
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\n' | b'\t' | b'\r') {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.pos)?;
            self.pos += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let e = *self.s.get(self.pos)?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.pos..self.pos + 4)?).ok()?;
                            self.pos += 4;
                            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                        }
                        other => out.push(other as char),
                    }
                }
                _ => {
                    let start = self.pos - 1;
                    let mut end = self.pos;
                    while end < self.s.len() && self.s[end] != b'"' && self.s[end] != b'\\' {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).ok()?);
                    self.pos = end;
                }
            }
        }
    }
    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.pos)? {
            b'n' => {
                self.pos += 4;
                Some(Value::Null)
            }
            b't' => {
                self.pos += 4;
                Some(Value::Bool(true))
            }
            b'f' => {
                self.pos += 5;
                Some(Value::Bool(false))
            }
            b'"' => self.string().map(Value::Str),
            b'[' => {
                self.pos += 1;
                let mut a = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Value::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Value::Arr(a));
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut m = BTreeMap::new();
                if self.eat(b'}').is_some() {
                    return Some(Value::Obj(m));
                }
                loop {
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.insert(k, self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Value::Obj(m));
                    }
                }
            }
            _ => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && matches!(self.s[self.pos], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).ok()?;
                text.parse::<f64>().ok().map(Value::Num)
            }
        }
    }
}

fn aggregate(v: &Value, acc: &mut (f64, u32, u32)) {
    match v {
        Value::Num(n) => acc.0 += n,
        Value::Str(s) => acc.1 = acc.1.wrapping_add(s.len() as u32),
        Value::Arr(a) => a.iter().for_each(|x| aggregate(x, acc)),
        Value::Obj(m) => {
            acc.2 += m.len() as u32;
            m.values().for_each(|x| aggregate(x, acc));
        }
        _ => {}
    }
}

/// LZ77 with 4-byte hash chains: tokens are literal runs (0, len, bytes) and matches
/// (1, len, dist u16).
fn compress(input: &[u8]) -> Vec<u8> {
    const HASH: usize = 1 << 12;
    const WINDOW: usize = 1 << 15;
    let mut head = vec![usize::MAX; HASH];
    let mut prev = vec![usize::MAX; input.len()];
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut lit_start = 0;
    let mut i = 0;
    let hash = |p: usize| -> usize {
        let x = u32::from_le_bytes([input[p], input[p + 1], input[p + 2], input[p + 3]]);
        (x.wrapping_mul(2654435761) >> 20) as usize
    };
    let flush = |out: &mut Vec<u8>, from: usize, to: usize| {
        for chunk in input[from..to].chunks(255) {
            out.push(0);
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
    };
    while i + 4 <= input.len() {
        let h = hash(i);
        let (mut best_len, mut best_dist) = (0, 0);
        let mut cand = head[h];
        let mut tries = 16;
        while cand != usize::MAX && i - cand <= WINDOW && tries > 0 {
            let mut l = 0;
            while i + l < input.len() && l < 255 && input[cand + l] == input[i + l] {
                l += 1;
            }
            if l > best_len {
                best_len = l;
                best_dist = i - cand;
            }
            cand = prev[cand];
            tries -= 1;
        }
        prev[i] = head[h];
        head[h] = i;
        if best_len >= 4 {
            flush(&mut out, lit_start, i);
            out.push(1);
            out.push(best_len as u8);
            out.extend_from_slice(&(best_dist as u16).to_le_bytes());
            for k in i + 1..(i + best_len).min(input.len().saturating_sub(3)) {
                let hk = hash(k);
                prev[k] = head[hk];
                head[hk] = k;
            }
            i += best_len;
            lit_start = i;
        } else {
            i += 1;
        }
    }
    flush(&mut out, lit_start, input.len());
    out
}

fn decompress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < data.len() {
        let len = data[p + 1] as usize;
        if data[p] == 0 {
            out.extend_from_slice(&data[p + 2..p + 2 + len]);
            p += 2 + len;
        } else {
            let dist = u16::from_le_bytes([data[p + 2], data[p + 3]]) as usize;
            let start = out.len() - dist;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
            p += 4;
        }
    }
    out
}

fn fnv(bytes: &[u8], mut h: u32) -> u32 {
    for &b in bytes {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    h
}

/// One unit of work; returns a checksum of everything it produced (0 on a failed check).
#[no_mangle]
pub extern "C" fn run(seed: u32, records: u32) -> u32 {
    let mut rng = Rng(seed as u64 | 1);
    let doc = gen_doc(&mut rng, records);
    let mut text = String::new();
    serialize(&doc, &mut text);
    let parsed = match (Parser { s: text.as_bytes(), pos: 0 }).value() {
        Some(v) => v,
        None => return 0,
    };
    let mut acc = (0.0, 0u32, 0u32);
    aggregate(&parsed, &mut acc);
    let mut again = String::new();
    serialize(&parsed, &mut again);
    if again != text {
        return 0;
    }
    let packed = compress(text.as_bytes());
    if decompress(&packed) != text.as_bytes() {
        return 0;
    }
    let mut h = fnv(&packed, 2166136261);
    h = fnv(format!("{:.3}|{}|{}", acc.0, acc.1, acc.2).as_bytes(), h);
    h ^ (text.len() as u32).wrapping_mul(31) ^ (packed.len() as u32)
}
