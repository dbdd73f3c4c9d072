/**
 * Converts spec-testsuite .wast files to wast2json output (Debian's wabt). The testsuite is
 * newer than wabt 1.0.32, so a file may contain commands wast2json cannot parse (typed
 * references, GC, `module definition`, ...). Those commands are blanked out (keeping line
 * numbers) and the conversion retried; dropping a module also drops the commands that follow
 * it up to the next module, since they would otherwise run against the wrong module. Node 20
 * cannot run any of the dropped modules anyway (they use proposals it lacks), which the
 * differential runner counts separately.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface Range {
  readonly start: number;
  readonly end: number;
  readonly firstLine: number;
  readonly lastLine: number;
}

interface Command extends Range {
  readonly head: string;
  /** Depth-1 s-expressions (module fields, for a module). */
  readonly children: Range[];
}

/** Top-level s-expressions of a .wast text, with their line ranges. */
export function topLevelCommands(text: string): Command[] {
  const out: Command[] = [];
  let depth = 0;
  let line = 1;
  let start = -1;
  let firstLine = 0;
  let childStart = -1;
  let childLine = 0;
  let children: Range[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') line++;
    else if (ch === ';' && text[i + 1] === ';') {
      while (i < text.length && text[i] !== '\n') i++;
      line++;
    } else if (ch === '(' && text[i + 1] === ';') {
      let nest = 1;
      i += 2;
      while (i < text.length && nest > 0) {
        if (text[i] === '\n') line++;
        if (text[i] === '(' && text[i + 1] === ';') {
          nest++;
          i++;
        } else if (text[i] === ';' && text[i + 1] === ')') {
          nest--;
          i++;
        }
        i++;
      }
      i--;
    } else if (ch === '"') {
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\') i++;
        else if (text[i] === '\n') line++;
        i++;
      }
    } else if (ch === '(') {
      if (depth === 0) {
        start = i;
        firstLine = line;
        children = [];
      } else if (depth === 1) {
        childStart = i;
        childLine = line;
      }
      depth++;
    } else if (ch === ')') {
      depth--;
      if (depth === 1)
        children.push({ start: childStart, end: i + 1, firstLine: childLine, lastLine: line });
      if (depth === 0) {
        const head = /^\(\s*([a-z_]+)/.exec(text.slice(start, start + 40))?.[1] ?? '';
        out.push({ start, end: i + 1, firstLine, lastLine: line, head, children });
      }
    }
  }
  return out;
}

export interface Conversion {
  readonly json: string | null;
  readonly commands: number;
  readonly dropped: number;
}

export function convertWast(wastPath: string, outDir: string): Conversion {
  const fine = convert(wastPath, outDir, true);
  return fine.json ? fine : convert(wastPath, outDir, false);
}

/** `fine`: drop only the module field an error is in, rather than the whole module. */
function convert(wastPath: string, outDir: string, fine: boolean): Conversion {
  const name = basename(wastPath, '.wast');
  const original = abbreviate(readFileSync(wastPath, 'utf8'));
  let text = original;
  const cmds = topLevelCommands(text);
  const dropped = new Set<number>();
  const droppedFields: Range[] = [];
  const src = join(outDir, `${name}.wast`);
  const json = join(outDir, `${name}.json`);
  for (let attempt = 0; attempt < 40; attempt++) {
    writeFileSync(src, text);
    if (dropped.size === cmds.length)
      return { json: null, commands: cmds.length, dropped: dropped.size };
    const r = spawnSync('wast2json', ['--enable-all', '--no-check', src, '-o', json], {
      encoding: 'utf8',
    });
    if (r.status === 0) return { json, commands: cmds.length, dropped: dropped.size };
    const lines = [...(r.stderr ?? '').matchAll(/\.wast:(\d+):\d+: error/g)].map((m) =>
      Number(m[1]),
    );
    const before = dropped.size + droppedFields.length;
    for (const ln of lines) {
      const idx = cmds.findIndex((c) => c.firstLine <= ln && ln <= c.lastLine);
      if (idx < 0 || dropped.has(idx)) continue;
      const cmd = cmds[idx] as Command;
      // Inside a module field (a function, a table...): drop just that field, once.
      const field =
        fine && cmd.head === 'module'
          ? cmd.children.find((f) => f.firstLine <= ln && ln <= f.lastLine)
          : undefined;
      if (field) {
        if (!droppedFields.includes(field)) droppedFields.push(field);
        continue;
      }
      dropped.add(idx);
      if ((cmds[idx] as Command).head === 'module') {
        for (let j = idx + 1; j < cmds.length && (cmds[j] as Command).head !== 'module'; j++)
          dropped.add(j);
      }
    }
    if (dropped.size + droppedFields.length === before) {
      // No locatable error (e.g. a crash): drop nothing more, give up on the file.
      return { json: null, commands: cmds.length, dropped: cmds.length };
    }
    const chars = original.split('');
    for (const c of [...[...dropped].map((i) => cmds[i] as Command), ...droppedFields]) {
      for (let k = c.start; k < c.end; k++) if (chars[k] !== '\n') chars[k] = ' ';
    }
    text = chars.join('');
  }
  return { json: null, commands: cmds.length, dropped: cmds.length };
}

/**
 * Rewrites to text wabt 1.0.32 can parse, keeping the meaning and the line numbers: the table
 * index newer text omits (`table.get` = `table.get 0`, folded or flat), and the nullable
 * abstract reference types spelled out (`(ref null func)` = `funcref`, likewise `extern`).
 */
function abbreviate(text: string): string {
  return text
    .replace(/\((table\.(?:get|set|grow|fill|size|copy|init))(?=\s*[()])/g, (m, op: string) =>
      op === 'table.copy' ? `(${op} 0 0` : op === 'table.init' ? m : `(${op} 0`,
    )
    .replace(/(?<=\s)table\.(?:get|set|grow|fill|size)(?=[ \t]*(?:\)|\n|;;))/g, '$& 0')
    .replace(/\(ref\s+null\s+(func|extern)\)/g, '$1ref');
}
