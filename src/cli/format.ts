/** Plain-text tables and times for the CLI. */
import { escapeUnsafe } from '../observability/inert.ts';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** An ISO time, `-` for none; one no `Date` can hold prints as its number (never throws). */
export function isoOrDash(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return `${ms} ms (out of range)`;
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/**
 * One table cell of at most `max` characters: whitespace runs become one space, and what could
 * still act on a terminal (a guest's escape sequences, bidirectional overrides) is escaped.
 */
export function truncate(text: string | null | undefined, max: number): string {
  if (!text) return '';
  const one = text.replace(/\s+/g, ' ');
  return escapeUnsafe(one.length > max ? `${one.slice(0, max - 1)}…` : one);
}
