/**
 * A plugin's `schedules()` output, parsed where the call ran (issue 10, arming).
 *
 * Decoding the output (UTF-8, JSON with its depth check) and parsing its declarations
 * (`parseDeclarationList`: validation, cron checks, the declaration hash) cost the scheduler's
 * thread ~5 µs a declaration, about half of arming 100k schedules. The host asks the sandbox to
 * do it (`CallRequest.declarations`): the pool does it on the worker that made the call, beside
 * the other plugins' discovery and off the thread that fires schedules, and sends back the
 * parsed list instead of the output bytes; the in-thread sandbox does it in place. Either way
 * the host receives the same `DiscoveryParse`, and parses the output itself only from a sandbox
 * that did not (`discoveryParse`).
 *
 * Trust: the parse is the host's own code running on the host's own thread (a pool worker runs
 * the guest's WebAssembly, which cannot reach the worker's JavaScript objects); the guest's output
 * is as untrusted as before and meets the same checks. This module is the only other maker of
 * `ParsedDeclaration` values: `fromWire` restores what `parseDeclarationList` made on another
 * thread.
 *
 * Wire form (`toWire`, inside the outcome's JSON meta): each distinct spec once, by its JSON text,
 * and the declarations naming it by index, so the receiving thread shares one spec object per
 * text (`sharedSpec`) as a local parse would, without building a spec text per declaration.
 */
import { errorMessage } from '../errors.ts';
import { parseGuestJson } from '../validation.ts';
import {
  parseDeclarationList,
  type DeclarationIssue,
  type DeclarationLimits,
  type ParsedDeclaration,
} from './declaration.ts';
import { sharedSpec, specJson, type ScheduleSpec } from './spec.ts';

/** What a discovery call asks its sandbox to parse the output with. */
export interface DeclarationsRequest {
  readonly limits: DeclarationLimits;
  /** The host clock's time for the checks (`parseDeclarationList`'s `nowMs`). */
  readonly nowMs: number;
}

export type DiscoveryParse =
  | { readonly ok: true; readonly value: ParsedDeclaration[] }
  /** The output is not UTF-8 JSON (or nests too deep): why. */
  | { readonly ok: false; readonly notJson: string }
  | {
      readonly ok: false;
      readonly index: number;
      readonly id: string | null;
      readonly issue: DeclarationIssue;
    };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes and parses a `schedules()` output. */
export function parseDiscoveryOutput(
  output: Uint8Array | null,
  req: DeclarationsRequest,
): DiscoveryParse {
  let value: unknown;
  try {
    value = parseGuestJson(decoder.decode(output ?? new Uint8Array()));
  } catch (err) {
    return { ok: false, notJson: errorMessage(err) };
  }
  return parseDeclarationList(value, req.limits, req.nowMs);
}

/** The parse a sandbox made (`parsed`), or the host's own of the output bytes. */
export function discoveryParse(
  parsed: DiscoveryParse | undefined,
  output: Uint8Array | null,
  req: DeclarationsRequest,
): DiscoveryParse {
  return parsed ?? parseDiscoveryOutput(output, req);
}

interface Wire {
  readonly specs: string[];
  /** Declarations whose `spec` is an index into `specs`. */
  readonly list: Record<string, unknown>[];
}

/** `p` as plain JSON data (see the head comment); failures are plain data already. */
export function toWire(p: DiscoveryParse): unknown {
  if (!p.ok) return p;
  const index = new Map<ScheduleSpec, number>();
  const specs: string[] = [];
  const list = p.value.map((d) => {
    let i = index.get(d.spec);
    if (i === undefined) {
      i = specs.push(specJson(d.spec)) - 1;
      index.set(d.spec, i);
    }
    return { ...d, spec: i };
  });
  return { ok: true, wire: { specs, list } satisfies Wire };
}

/** What `toWire` made, after a JSON round trip. Throws on anything it did not make. */
export function fromWire(w: unknown): DiscoveryParse {
  const o = w as { ok?: unknown; wire?: Wire } | null;
  if (o === null || typeof o !== 'object' || typeof o.ok !== 'boolean')
    throw new TypeError('bad declarations');
  if (!o.ok) return o as DiscoveryParse;
  const wire = o.wire;
  if (!wire || !Array.isArray(wire.specs) || !Array.isArray(wire.list))
    throw new TypeError('bad declarations');
  const specs = wire.specs.map((text) => sharedSpec(text));
  for (const d of wire.list) {
    const spec = specs[d.spec as number];
    if (spec === undefined) throw new TypeError('bad declaration spec');
    d.spec = spec;
  }
  return { ok: true, value: wire.list as unknown as ParsedDeclaration[] };
}
