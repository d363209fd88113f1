/**
 * `rtp-bench report` across kinds: a capacity or scale file alone shows as its command showed it, two of one kind
 * side by side with better/worse, and a run mixed with a search is refused, naming each file and its kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReport } from '../../src/commands/report.js';
import { tableLine } from './read-back.js';
import { fileText, fixtureCapacity, fixtureResults, fixtureScale, searchFileText } from './fixture.js';

function capture(isTTY = false): { io: Parameters<typeof runReport>[2]; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (t: string) => out.push(t), isTTY }, stderr: { write: (t: string) => err.push(t) } }, out, err };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-report-kinds-'));
  try {
    await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const line = tableLine;

test('report of a run and a capacity search: refused, naming both files and their kinds, nothing printed or written', async () => {
  await withDir(async (dir) => {
    const run = join(dir, 'run.json');
    const cap = join(dir, 'cap.json');
    writeFileSync(run, fileText(fixtureResults()));
    writeFileSync(cap, searchFileText(await fixtureCapacity()));
    const html = join(dir, 'page.html');
    const { io, out, err } = capture();
    assert.equal(await runReport([run, cap], html, io), 2);
    assert.deepEqual(out, []);
    assert.deepEqual(err, [`rtp-bench: report compares files of one kind, and these differ: ${run} is a run, ${cap} is a capacity search (kind: capacity); report them apart\n`]);
    assert.equal(existsSync(html), false);
    const scale = join(dir, 'scale.json');
    writeFileSync(scale, searchFileText(await fixtureScale()));
    const mixed = capture();
    assert.equal(await runReport([cap, scale], undefined, mixed.io), 2);
    assert.match(mixed.err.join(''), /cap\.json is a capacity search \(kind: capacity\), .*scale\.json is a scale search \(kind: scale\)/);
  });
});

test('report of one capacity file: its steps and answer as capacity printed them, and its page', async () => {
  await withDir(async (dir) => {
    const cap = join(dir, 'cap.json');
    writeFileSync(cap, searchFileText(await fixtureCapacity()));
    const html = join(dir, 'cap.html');
    const { io, out, err } = capture();
    assert.equal(await runReport([cap], html, io), 0);
    assert.deepEqual(err, []);
    const text = out.join('');
    assert.ok(text.includes('capacity: 17 calls of opus:pcmu on 1 worker (0.3 cores each), rtpengine 17.6 ms CPU per call-second - limited by latency.p99 (72 ms > 60 ms at 18 calls)'), text);
    assert.deepEqual(line(text, '18').slice(0, 2), ['18', 'FAIL']);
    const page = readFileSync(html, 'utf8');
    assert.ok(page.includes('class="knee"') && page.includes('class="slo"'));
  });
});

test('report of one scale file: each count\'s search, the scaling table, and its page', async () => {
  await withDir(async (dir) => {
    const scale = join(dir, 'scale.json');
    writeFileSync(scale, searchFileText(await fixtureScale()));
    const html = join(dir, 'scale.html');
    const { io, out } = capture();
    assert.equal(await runReport([scale], html, io), 0);
    const text = out.join('');
    assert.deepEqual(line(text, '2'), ['2', '23', '11.5', '88%', 'latency.p99<60ms']);
    assert.ok(text.includes('capacity: 13 calls of opus:pcmu on 1 worker (0.2 cores each)'));
    assert.ok(readFileSync(html, 'utf8').includes('class="ideal"'));
  });
});

test('report of two capacity files: per codec pair capacity, cost and calls per core, each marked better or worse', async () => {
  await withDir(async (dir) => {
    const one = join(dir, 'one.json');
    const two = join(dir, 'two.json');
    writeFileSync(one, searchFileText(await fixtureCapacity({ runId: '20260101-130000-aaaa' })));
    // The planted change: the knee four calls higher (at the same CPU cap, so each call costs less).
    writeFileSync(two, searchFileText(await fixtureCapacity({ runId: '20260101-131000-bbbb', knee: 20 })));
    const html = join(dir, 'page.html');
    const { io, out } = capture();
    assert.equal(await runReport([one, two], html, io), 0);
    const text = out.join('');
    assert.deepEqual(line(text, 'opus:pcmu: capacity (calls)'), ['opus:pcmu: capacity (calls)', '17', '21', '1.24x', 'better']);
    assert.deepEqual(line(text, '  limited by'), ['limited by', 'latency.p99<60ms at 18', 'latency.p99<60ms at 22', '', '']);
    assert.deepEqual(line(text, '  rtpengine CPU ms per call-second').slice(1), ['17.65', '14.29', '0.81x', 'better']);
    assert.deepEqual(line(text, '  calls per core').slice(1), ['57', '70', '1.24x', 'better']);
    assert.equal(text.includes('\u001b['), false, 'no colour into a pipe');
    const page = readFileSync(html, 'utf8');
    assert.match(page, /<th scope="row">opus:pcmu: capacity \(calls\)<\/th><td>17<\/td><td>21<\/td><td class="ratio">1.24x<\/td><td class="mark better">better<\/td>/);
    // Reversed, the same change is worse; on a terminal the mark is coloured.
    const tty = capture(true);
    assert.equal(await runReport([two, one], undefined, tty.io), 0);
    assert.ok(tty.out.join('').includes('\u001b[31mworse\u001b[0m'), tty.out.join(''));
  });
});

test('report of two scale files: capacity and efficiency per worker count, marked', async () => {
  await withDir(async (dir) => {
    const one = join(dir, 'one.json');
    const two = join(dir, 'two.json');
    writeFileSync(one, searchFileText(await fixtureScale({ 1: 12, 2: 22 }, { runId: '20260101-140000-aaaa' })));
    writeFileSync(two, searchFileText(await fixtureScale({ 1: 12, 2: 14 }, { runId: '20260101-141000-bbbb' })));
    const { io, out } = capture();
    assert.equal(await runReport([one, two], join(dir, 'page.html'), io), 0);
    const text = out.join('');
    assert.deepEqual(line(text, '1 worker: capacity (calls)').slice(1), ['13', '13', '1.00x', 'same']);
    assert.deepEqual(line(text, '2 workers: capacity (calls)').slice(1), ['23', '15', '0.65x', 'worse']);
    assert.deepEqual(line(text, '  efficiency').slice(1, 3), ['100%', '100%']);
    assert.equal(line(text, '  efficiency').length, 5);
    assert.ok(readFileSync(join(dir, 'page.html'), 'utf8').includes('<td class="mark worse">worse</td>'));
  });
});
