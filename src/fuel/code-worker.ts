/**
 * The fuel instrumenter's helper thread (see code-helper.ts): plans and emits the second half
 * of a large module's function bodies while the main thread does the first half. It answers
 * each job on its port, then bumps `sync[0]` and wakes the main thread, which is blocked in
 * `Atomics.wait` (`instrument()` is synchronous) and takes the answer with
 * `receiveMessageOnPort`.
 */
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import { ByteWriter } from '../wasm/byte-writer.ts';
import { emitFunctions, NeedsMainThread } from './code-emitter.ts';
import type { CompiledCosts } from './cost-table.ts';
import type { HelperAnswer, HelperJob } from './code-helper.ts';

const { port, sync } = workerData as { port: MessagePort; sync: Int32Array };

function run(m: HelperJob): { answer: HelperAnswer; transfer: ArrayBuffer[] } {
  const costs: CompiledCosts = {
    ...m.costs,
    hostCost() {
      throw new Error('host costs are priced on the main thread');
    },
  };
  const job = {
    ctx: { ...m.ctx, costs },
    facts: { ...m.facts, costs },
    types: m.types,
    funcTypes: m.funcTypes,
  };
  const out = new ByteWriter(Math.ceil(m.bytes * 2.5) + 1024);
  const alloc = {
    carry: () => 0, // numbered by the main thread afterwards
    blockType: (): number => {
      throw new NeedsMainThread('a wrapper type');
    },
  };
  try {
    const r = emitFunctions(m.src, job, m.from, m.to, m.pos, out, alloc, null);
    if (typeof r === 'string') return { answer: { kind: 'restart', restart: r }, transfer: [] };
    const payload = out.bytes();
    return {
      answer: { kind: 'done', payload, ...r },
      transfer: [
        payload.buffer as ArrayBuffer,
        ...r.twinBodies.map((b) => b.buffer as ArrayBuffer),
      ],
    };
  } catch (err) {
    // Invalid input, or a type to number: the main thread does the whole module and reports.
    return { answer: { kind: 'main', reason: String(err) }, transfer: [] };
  }
}

port.on('message', (m: HelperJob) => {
  const { answer, transfer } = run(m);
  port.postMessage(answer, transfer);
  Atomics.add(sync, 0, 1);
  Atomics.notify(sync, 0);
});
Atomics.store(sync, 1, 1);
Atomics.notify(sync, 1);
