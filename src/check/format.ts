/** The human-readable `hourglass check` report (`--json` prints the `CheckReport` itself). */
import { GUEST_EXPORTS, REQUIRED_EXPORTS } from '../sandbox/guest-module.ts';
import type { CheckOptions, CheckReport, PhaseReport } from './types.ts';

function pages(n: number): string {
  return `${n} page${n === 1 ? '' : 's'} (${n * 64} KiB)`;
}

export function formatReport(r: CheckReport, opts: CheckOptions): string {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  line(`hourglass check ${opts.wasm}`);
  line(`  manifest: ${r.manifest ?? 'none given (synthesized: every capability, default limits)'}`);
  line();
  if (r.binary) {
    const b = r.binary;
    line(
      `Binary     ${b.valid ? 'valid core module' : 'NOT a valid WebAssembly module'}, ${b.bytes} bytes, sha256 ${b.sha256.slice(0, 16)}…`,
    );
    if (b.memory) {
      const m = b.memory;
      line(
        `Memory     ${m.imported ? 'imported' : 'own'} memory: initial ${pages(m.initial)}, maximum ${m.maximum === null ? 'none declared' : pages(m.maximum)}`,
      );
    } else if (b.valid) {
      line('Memory     no linear memory');
    }
    line(
      `           manifest limits.memoryPages: ${b.manifestMemoryPages} (the cap on its linear memory)`,
    );
  }
  if (r.imports.length > 0) {
    line(`Imports (${r.imports.length})`);
    const width = Math.max(...r.imports.map((i) => i.name.length));
    for (const i of r.imports) {
      const flag = i.role === 'unknown' || i.kind !== 'function' ? '  <-- REFUSED' : '';
      line(`  ${i.name.padEnd(width)}  ${i.note}${flag}`);
    }
  }
  if (r.binary?.valid) {
    line('Exports');
    for (const name of GUEST_EXPORTS) {
      const e = r.exports.find((x) => x.name === name && x.kind === 'function');
      const required = (REQUIRED_EXPORTS as readonly string[]).includes(name);
      line(
        `  ${name.padEnd(10)} ${required ? 'required' : 'optional'}  ${e ? 'present' : required ? 'MISSING' : 'absent'}`,
      );
    }
    const others = r.exports.filter((e) => !(GUEST_EXPORTS as readonly string[]).includes(e.name));
    if (others.length > 0)
      line(`  other: ${others.map((e) => `${e.name} (${e.kind})`).join(', ')} (ignored)`);
  }
  const phaseLine = (label: string, p: PhaseReport | undefined) => {
    if (!p) return;
    const took = p.durationMs === null ? '' : ` in ${p.durationMs} ms`;
    line(`${label.padEnd(10)} ${p.status}${took}; fuel used: ${p.fuel}`);
    if (p.detail) line(`           ${p.detail}`);
    for (const c of p.hostCalls) {
      const a = JSON.parse(c.answer) as { error?: { code: string; message: string } };
      line(`  ${c.fn} -> ${a.error ? `${a.error.code}: ${a.error.message}` : 'ok'}`);
    }
  };
  phaseLine('Discovery', r.phases.discovery);
  if (r.contracts.length > 0) {
    line(`Job contracts (${r.contracts.length})`);
    for (const c of r.contracts) line(`  ${JSON.stringify(c)}`);
  }
  if (r.phases.discovery?.status === 'ok' && r.verdict !== 'refused') {
    line(`Schedules (${r.schedules.length} declared)`);
    for (const s of r.schedules) {
      const zone = s.kind === 'cron' ? ` in ${s.timezone}` : '';
      line(`  ${s.id}: ${s.spec}${zone}${s.state === 'paused' ? ' (starts paused)' : ''}`);
      if (s.payload !== null) line(`    payload: ${JSON.stringify(s.payload)}`);
      if (s.next.length === 0) line('    never fires again');
      s.next.forEach((t, i) =>
        line(`    ${i === 0 ? 'next: ' : '      '}${s.nextLocal[i]}  (${t})`),
      );
    }
  }
  phaseLine('Run', r.phases.run);
  if (r.run) {
    line(
      `  schedule ${r.run.scheduleId}, payload ${JSON.stringify(r.run.payload)}: ${r.run.status}`,
    );
    if (r.run.result !== null) line(`  result: ${JSON.stringify(r.run.result)}`);
    line(`  cursor after: ${JSON.stringify(r.run.cursor)}`);
  }
  if (r.exports.some((e) => e.name === 'cleanup' && e.kind === 'function')) {
    phaseLine('Cleanup', r.phases.cleanup);
  } else if (r.phases.cleanup) {
    line('Cleanup    not exported (optional)');
  }
  line();
  for (const p of r.problems) line(`${p.severity.toUpperCase()} [${p.phase}] ${p.message}`);
  if (r.problems.length > 0) line();
  const first = r.problems.find((p) => p.severity === 'error');
  line(
    r.verdict === 'accepted'
      ? 'ACCEPTED: Hourglass would load this guest.'
      : r.verdict === 'refused'
        ? `REFUSED: Hourglass would not load this guest: ${first?.message ?? ''}`
        : `FAILED: the guest loads, but: ${first?.message ?? ''}`,
  );
  return out.join('\n');
}
