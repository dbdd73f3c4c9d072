// AssemblyScript source of the `wordfreq` fuel-bench kernel (a .as file so that tsc, eslint and
// prettier leave it alone; the bench copies it to a temporary .ts for asc). Strings, arrays,
// a Map and a sort under the incremental GC: generate n words, join, split, count, sort the
// distinct words and hash them with their counts.
const WORDS: string[] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
export function run(n: i32): i32 {
  let x: u32 = 2463534242;
  const parts = new Array<string>();
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    parts.push(WORDS[x & 7] + (x % 50).toString());
  }
  const text = parts.join(" ");
  const counts = new Map<string, i32>();
  const tokens = text.split(" ");
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    counts.set(t, counts.has(t) ? counts.get(t) + 1 : 1);
  }
  const keys = counts.keys();
  keys.sort((a: string, b: string): i32 => (a < b ? -1 : a > b ? 1 : 0));
  let h: u32 = 2166136261;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    for (let j = 0; j < k.length; j++) h = (h ^ k.charCodeAt(j)) * 16777619;
    h = (h ^ counts.get(k)) * 16777619;
  }
  return <i32>h;
}
