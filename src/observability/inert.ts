/**
 * Text a guest controls (schedule ids and descriptions, error messages, log lines, notes), made
 * safe to show in a terminal or a log line: C0 controls (but tab), DEL, C1, the line and
 * paragraph separators and the bidirectional overrides become `\u{..}` escapes, so the text
 * cannot forge another line, move a terminal's cursor or reorder what an operator reads.
 */

/* eslint-disable no-control-regex */
const UNSAFE =
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

/** `text` with every unsafe character escaped (see the head comment). */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}
