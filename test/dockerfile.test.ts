/**
 * The Dockerfile at the repository's root, checked by parsing: no container builder runs where the tests do, so it is
 * never built here. What a build would trip over first is checked against the repository instead: every instruction
 * known, FROM first, the base image's node major = package.json's engines, every COPY from the build context present
 * and not excluded by .dockerignore, every COPY from the builder stage a path the build makes (present here after
 * `npm run build` and the addon's build), every `npm run` a script, the ENTRYPOINT the package's bin, and the
 * compilers and rtpengine kept out of the final image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';

interface Instruction {
  keyword: string;
  /** The rest of the line, continuations joined. */
  args: string;
  line: number;
}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

/** Dockerfile text -> instructions: comments and blank lines dropped, lines ending in a backslash joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === null && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    const current: { text: string; line: number } = pending ?? { text: '', line: i + 1 };
    if (line.endsWith('\\')) {
      current.text += `${line.slice(0, -1)} `;
      pending = current;
      return;
    }
    current.text += line;
    pending = null;
    const m = /^\s*(\S+)\s*(.*)$/.exec(current.text)!;
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: current.line });
  });
  assert.equal(pending, null, 'the Dockerfile ends inside a continued line');
  return out;
}

/** COPY's flags (--from=build) and its sources and destination. */
function copyParts(args: string): { from: string | null; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length) ?? null;
  return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1]! };
}

const ROOT = packageRoot();
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; bin: Record<string, string>; scripts: Record<string, string> };
const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

/** The stages: each FROM and the instructions up to the next. */
function stages(): { from: Instruction; name: string | null; body: Instruction[] }[] {
  const out: { from: Instruction; name: string | null; body: Instruction[] }[] = [];
  for (const ins of dockerfile) {
    if (ins.keyword === 'FROM') out.push({ from: ins, name: /\s+AS\s+(\S+)$/i.exec(ins.args)?.[1] ?? null, body: [] });
    else out[out.length - 1]!.body.push(ins);
  }
  return out;
}

test('the parser: continuations joined, comments dropped, keywords read', () => {
  assert.deepEqual(parseDockerfile('# c\nFROM a AS b\n\nRUN x \\\n && y\n'), [
    { keyword: 'FROM', args: 'a AS b', line: 2 },
    { keyword: 'RUN', args: 'x   && y', line: 4 },
  ]);
});

test('Dockerfile: known instructions, FROM first, node:<engines major>-bookworm-slim in every stage, builder and image', () => {
  for (const ins of dockerfile) assert.ok(KNOWN.has(ins.keyword), `line ${ins.line}: ${ins.keyword} is not a Dockerfile instruction`);
  assert.equal(dockerfile[0]!.keyword, 'FROM');
  const major = /(\d+)/.exec(pkg.engines.node)![1];
  const all = stages();
  assert.ok(all.length >= 2, 'multi-stage: a builder and the image');
  for (const s of all) assert.equal(s.from.args.split(/\s+/)[0], `node:${major}-bookworm-slim`, `line ${s.from.line}`);
  const final = all[all.length - 1]!;
  const finalRuns = final.body.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  assert.doesNotMatch(finalRuns, /apt-get|g\+\+|python3|\bmake\b/, 'the compilers stay in the builder');
  assert.doesNotMatch(dockerfile.map((i) => i.args).join('\n'), /rtpengine/, 'no rtpengine: the workers run it');
  const user = final.body.filter((i) => i.keyword === 'USER').pop();
  assert.ok(user && !['root', '0'].includes(user.args.split(':')[0]!), 'the image runs as a non-root user by default');
});

test('Dockerfile: every COPY source exists (and is not .dockerignored), every builder path is one the build makes', () => {
  const all = stages();
  const builderWorkdir = new Map(all.filter((s) => s.name !== null).map((s) => [s.name!, s.body.filter((i) => i.keyword === 'WORKDIR').pop()?.args ?? '/']));
  let fromBuilder = 0;
  for (const s of all) {
    for (const ins of s.body.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      const { from, sources } = copyParts(ins.args);
      for (const src of sources) {
        if (from === null) {
          assert.ok(existsSync(join(ROOT, src)), `line ${ins.line}: COPY ${src}: not in the repository`);
          const clean = src.replace(/^\.\//, '').replace(/\/$/, '');
          for (const pattern of ignored) assert.ok(clean !== pattern && !clean.startsWith(`${pattern}/`), `line ${ins.line}: COPY ${src} is excluded by .dockerignore (${pattern})`);
        } else {
          // /app/<path> in the builder is <path> here after the same build (npm run build, the addon's).
          const workdir = builderWorkdir.get(from);
          assert.ok(workdir !== undefined, `line ${ins.line}: --from=${from} names no stage`);
          assert.ok(src.startsWith(`${workdir}/`), `line ${ins.line}: ${src} is under the builder's ${workdir}`);
          const local = join(ROOT, src.slice(workdir.length + 1));
          if (src.endsWith('.node') && !existsSync(local)) continue; // the addon is optional here; the build makes it there
          assert.ok(existsSync(local), `line ${ins.line}: the build makes no ${src}`);
          fromBuilder++;
        }
      }
    }
  }
  assert.ok(fromBuilder >= 3);
  // The addon where workers/native/transport.ts looks for it, from the compiled dist/workers/native/.
  const transport = readFileSync(join(ROOT, 'workers', 'native', 'transport.ts'), 'utf8');
  assert.ok(transport.includes("'../../../workers/native/build/Release/rtp_transport.node'"));
  assert.ok(dockerfile.some((i) => i.keyword === 'COPY' && i.args.endsWith('./workers/native/build/Release/') && i.args.includes('rtp_transport.node')));
});

test('Dockerfile: npm ci from the lock file, every npm run a script, the addon built, ENTRYPOINT the CLI, rtp-bench on PATH', () => {
  const runs = dockerfile.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  const ci = dockerfile.findIndex((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
  assert.ok(ci > 0, 'npm ci');
  assert.ok(dockerfile.slice(0, ci).some((i) => i.keyword === 'COPY' && i.args.includes('package-lock.json')), 'the lock file copied before npm ci');
  for (const m of runs.join('\n').matchAll(/npm run (\S+)/g)) assert.ok(pkg.scripts[m[1]!], `npm run ${m[1]}: no such script`);
  assert.ok(runs.some((r) => r.includes('npm run build:native')), 'the native addon is built');
  const entry = dockerfile.filter((i) => i.keyword === 'ENTRYPOINT').pop()!;
  const argv = JSON.parse(entry.args) as string[];
  assert.equal(argv[0], 'node');
  assert.equal(argv[1], `/app/${pkg.bin['rtp-bench']}`, "the package's bin");
  assert.ok(existsSync(join(ROOT, pkg.bin['rtp-bench']!)), 'present after npm run build');
  // kubernetes/rtp-bench-shards.yaml runs `rtp-bench` from a shell.
  assert.ok(runs.some((r) => r === `ln -s /app/${pkg.bin['rtp-bench']} /usr/local/bin/rtp-bench`));
  assert.ok(readFileSync(join(ROOT, pkg.bin['rtp-bench']!), 'utf8').startsWith('#!/usr/bin/env node'), 'the link runs with node');
});
