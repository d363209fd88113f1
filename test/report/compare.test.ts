import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHANGE_TOLERANCE, changeMark, comparisonRows, describeRun, ratioText, renderComparison, terminalSafe } from '../../src/report/compare.js';
import { renderHtml } from '../../src/report/html.js';
import { ResultsFileError, readResultsFile } from '../../src/report/read.js';
import { runReport } from '../../src/commands/report.js';
import type { Results } from '../../src/report/results.js';
import { tableLine } from './read-back.js';
import { fileText, fixtureResults } from './fixture.js';

function oneWorkerAndTwo(): [Results, Results] {
  return [
    fixtureResults({ runId: '20260101-120000-aaaa', workers: 1, latencyMs: 30 }),
    fixtureResults({ runId: '20260101-121000-bbbb', workers: 2, latencyMs: 15, seed: 9, failed: [{ index: 3, cause: 'ng timeout', message: 'no reply' }] }),
  ];
}

const line = tableLine;

test('renderComparison: one column per run and run2/run1 for two runs', () => {
  const [one, two] = oneWorkerAndTwo();
  const table = renderComparison([one, two]);
  assert.deepEqual(line(table, ''), ['', '1: 20260101-120000-aaaa', '2: 20260101-121000-bbbb', '2 / 1', '2 vs 1']);
  assert.deepEqual(line(table, 'rtpengine'), ['rtpengine', 'embedded, 1 worker', 'embedded, 2 workers', '', '']);
  assert.deepEqual(line(table, 'calls ok / attempted'), ['calls ok / attempted', '6/6', '5/6', '0.83x', 'worse']);
  assert.deepEqual(line(table, 'calls failed'), ['calls failed', '0', '1', '-', 'worse']);
  assert.deepEqual(line(table, '  ng timeout'), ['ng timeout', '0', '1', '-', 'worse']);
  const p50 = [one.summary.latencyMs?.p50 ?? NaN, two.summary.latencyMs?.p50 ?? NaN];
  assert.deepEqual(line(table, 'latency p50 ms'), ['latency p50 ms', (p50[0] ?? 0).toFixed(2), (p50[1] ?? 0).toFixed(2), ratioText(p50[0], p50[1]), 'better']);
  assert.deepEqual(line(table, 'rtpengine MOS p50'), ['rtpengine MOS p50', '-', '-', '-', '']);
  // The generator's own figures describe rtp-bench, not the system: no mark.
  assert.deepEqual(line(table, 'generator CPU %'), ['generator CPU %', '12', '12', '1.00x', '']);
  for (const label of ['loss % (all streams)', 'latency p99 ms', 'jitter p50 ms', 'jitter p99 ms', 'setup p50 ms', 'setup p99 ms', 'MOS p50 (E-model)', 'generator us / packet op', 'send lateness p99 ms']) {
    assert.equal(line(table, label).length, 5, label);
  }
});

test('renderComparison: no ratio column unless there are exactly two runs', () => {
  const [one, two] = oneWorkerAndTwo();
  assert.equal(renderComparison([one, two, one]).includes('2 / 1'), false);
  assert.equal(renderComparison([one, two, one]).includes('2 vs 1'), false);
  assert.equal(line(renderComparison([one]), 'calls ok / attempted').length, 2);
});

test('comparisonRows: absent figures are "-", never 0', () => {
  const calibration = fixtureResults({ runId: '20260101-130000-cccc', workers: 0 });
  const dead = fixtureResults({ runId: '20260101-140000-dddd', calls: 1, packets: 0, failed: [{ index: 0, cause: 'ng timeout', message: '' }] });
  const rows = comparisonRows([calibration, { ...dead, histograms: {} }]);
  const row = (label: string) => rows.find((r) => r.label === label);
  assert.deepEqual(row('setup p50 ms')?.cells, ['-', '-']);
  assert.deepEqual(row('loss % (all streams)')?.cells, ['0.000', '-']);
  assert.deepEqual(row('loss % (all streams)')?.values, [0, null]);
  assert.deepEqual(row('rtpengine')?.cells, ['none (calibration)', 'embedded, 1 worker']);
  assert.equal(describeRun(calibration).rtpengineVersion, null);
});

test('changeMark: lower is better for loss and latency, higher for MOS and calls; within 2% the same', () => {
  assert.equal(CHANGE_TOLERANCE, 0.02);
  assert.equal(changeMark(1, 0.5, 'lower'), 'better', 'loss halved');
  assert.equal(changeMark(20, 30, 'lower'), 'worse', 'latency up');
  assert.equal(changeMark(4, 4.3, 'higher'), 'better', 'MOS up');
  assert.equal(changeMark(10, 8, 'higher'), 'worse', 'fewer calls ok');
  assert.equal(changeMark(20, 20.3, 'lower'), 'same', '1.5%: noise');
  assert.equal(changeMark(20, 19.6, 'lower'), 'same', '2% exactly');
  assert.equal(changeMark(20, 20.5, 'lower'), 'worse', '2.4%: a change');
  assert.equal(changeMark(0, 0, 'lower'), 'same');
  assert.equal(changeMark(0, 0.2, 'lower'), 'worse', 'from nothing to something');
  assert.equal(changeMark(0.0001, 0.0004, 'lower', ['0.000', '0.000']), 'same', 'not visible at the table\'s precision');
  assert.equal(changeMark(null, 1, 'lower'), null);
  assert.equal(changeMark(1, Number.NaN, 'higher'), null);
});

test('renderComparison and the page: a planted change each way, and one within the tolerance', () => {
  const one = fixtureResults({ runId: '20260101-120000-aaaa', lossEvery: 3 });
  const s = one.summary;
  const latency = s.latencyMs!;
  const mos = s.mos!;
  const two: Results = {
    ...one,
    runId: '20260101-121000-bbbb',
    summary: {
      ...s,
      packets: { ...s.packets, lost: 0, lossPct: 0 },
      latencyMs: { ...latency, p99: latency.p99 * 1.5 },
      mos: { ...mos, p50: mos.p50 * 1.01 },
    },
  };
  const table = renderComparison([one, two]);
  assert.equal(line(table, 'loss % (all streams)')[4], 'better');
  assert.equal(line(table, 'latency p99 ms')[4], 'worse');
  assert.equal(line(table, 'MOS p50 (E-model)')[4], 'same');
  assert.equal(line(table, 'latency p50 ms')[4], 'same', 'unchanged');
  assert.equal(table.includes('\u001b['), false, 'no colour unless asked');
  const colored = renderComparison([one, two], { color: true });
  assert.ok(colored.includes('\u001b[32mbetter\u001b[0m') && colored.includes('\u001b[31mworse\u001b[0m'));
  const page = renderHtml([one, two]);
  assert.match(page, /<th scope="row">latency p99 ms<\/th><td>[\d.]+<\/td><td>[\d.]+<\/td><td class="ratio">1.50x<\/td><td class="mark worse">worse<\/td>/);
  assert.match(page, /<th scope="row">loss % \(all streams\)<\/th>.*?<td class="mark better">better<\/td>/);
  assert.match(page, /<th scope="row">MOS p50 \(E-model\)<\/th>.*?<td class="mark same">same<\/td>/);
});

test('ratioText: run2 / run1', () => {
  assert.equal(ratioText(10, 20), '2.00x');
  assert.equal(ratioText(3, 1), '0.33x');
  assert.equal(ratioText(1, 18_176), '18176x');
  assert.equal(ratioText(2, 25), '12.5x');
  assert.equal(ratioText(0, 0), '=');
  assert.equal(ratioText(0, 5), '-');
  assert.equal(ratioText(null, 5), '-');
  assert.equal(ratioText(5, undefined), '-');
});

test('terminalSafe: escape sequences from a results file cannot reach the terminal', () => {
  assert.equal(terminalSafe('run\u001b[2J\u0007id\n'), 'run?[2J?id?');
  const [one, two] = oneWorkerAndTwo();
  const table = renderComparison([one, { ...two, runId: '\u001b[31mred' }]);
  assert.equal(table.includes('\u001b'), false);
  assert.ok(table.includes('?[31mred'));
});

test('readResultsFile: reads a results file; names the file and the problem otherwise', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-report-'));
  try {
    const good = join(dir, 'good.json');
    const run = fixtureResults();
    writeFileSync(good, fileText(run));
    const read = await readResultsFile(good);
    assert.equal(read.kind, 'run');
    assert.ok(read.kind === 'run');
    assert.equal(read.results.runId, run.runId);
    assert.deepEqual(read.results.summary, run.summary);
    assert.deepEqual(read.results.histograms, run.histograms);

    const cases: [string, string, string][] = [
      ['empty.json', '', 'is empty, not an rtp-bench results file'],
      ['text.json', 'hello\n', 'is not JSON ('],
      ['array.json', '[1, 2]', 'is not an rtp-bench results file: expected a JSON object, found an array'],
      ['other.json', '{"name": "package"}', 'is not an rtp-bench results file: it has no "format" field'],
      ['future.json', JSON.stringify({ ...JSON.parse(fileText(run)), format: 4 }), 'has results format 4; this rtp-bench reads runs in format 2 or 3'],
      ['nosummary.json', JSON.stringify({ format: 3, runId: 'x', plan: {} }), 'is not an rtp-bench results file: it has no "summary" object'],
      ['oldcapacity.json', JSON.stringify({ format: 2, kind: 'capacity', runId: 'x', plan: {}, profiles: [] }), 'is a capacity search (kind: capacity) in results format 2, whose layout (result, steps[].outcome) this rtp-bench no longer reads'],
      ['futurescale.json', JSON.stringify({ format: 4, kind: 'scale' }), 'has results format 4; this rtp-bench reads scale searches in format 3'],
      ['otherkind.json', JSON.stringify({ format: 3, kind: 'calibration' }), 'has kind "calibration", which this rtp-bench does not read: expected a run (no kind), capacity or scale'],
      ['noplan.json', JSON.stringify({ format: 3, runId: 'x', summary: run.summary }), 'is not an rtp-bench results file: it has no "plan" object'],
    ];
    for (const [name, text, problem] of cases) {
      const path = join(dir, name);
      writeFileSync(path, text);
      await assert.rejects(readResultsFile(path), (err: unknown) => {
        assert.ok(err instanceof ResultsFileError, String(err));
        assert.ok(err.message.startsWith(`${path}: ${problem}`), err.message);
        assert.equal(err.message.includes('\n'), false);
        return true;
      });
    }
    // A run written before format 3 reads as it is: nothing of a run changed.
    const older = join(dir, 'format2.json');
    writeFileSync(older, JSON.stringify({ ...JSON.parse(fileText(run)), format: 2 }));
    assert.equal((await readResultsFile(older)).kind, 'run');
    await assert.rejects(readResultsFile(join(dir, 'missing.json')), { message: `${join(dir, 'missing.json')}: no such file` });
    await assert.rejects(readResultsFile(dir), { message: `${dir}: is a directory, not a results file` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function capture(): { io: { stdout: { write(t: string): boolean }; stderr: { write(t: string): boolean } }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (t: string) => out.push(t) > 0 },
      stderr: { write: (t: string) => err.push(t) > 0 },
    },
    out,
    err,
  };
}

test('runReport: the table, and the page with --html', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-report-'));
  try {
    const [one, two] = oneWorkerAndTwo();
    const files = [join(dir, 'one.json'), join(dir, 'two.json')];
    writeFileSync(files[0] as string, fileText(one));
    writeFileSync(files[1] as string, fileText(two));
    const html = join(dir, 'compare.html');
    const { io, out, err } = capture();
    assert.equal(await runReport(files, html, io), 0);
    assert.deepEqual(err, []);
    assert.ok(out.join('').includes('2: 20260101-121000-bbbb'));
    assert.ok(out.join('').includes(`html     ${html}`));
    const page = readFileSync(html, 'utf8');
    assert.ok(page.startsWith('<!DOCTYPE html>'));
    assert.equal(page.includes('<script'), false);

    // An --html in a folder that does not exist: one line, exit 2, no stray temporary file.
    const bad = capture();
    const nowhere = join(dir, 'no', 'such', 'page.html');
    assert.equal(await runReport(files, nowhere, bad.io), 2);
    assert.deepEqual(bad.err, [`rtp-bench: --html ${nowhere}: cannot write the page: its folder does not exist\n`]);
    mkdirSync(join(dir, 'page.html'));
    assert.equal(await runReport(files, join(dir, 'page.html'), capture().io), 2);
    assert.equal(existsSync(join(dir, `page.html.tmp-${process.pid}`)), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runReport: every bad file gets its own line, nothing is printed or written, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rtp-bench-report-'));
  try {
    const good = join(dir, 'good.json');
    writeFileSync(good, fileText(fixtureResults()));
    const notJson = join(dir, 'notes.txt');
    writeFileSync(notJson, 'calls went fine\n');
    const missing = join(dir, 'missing.json');
    const html = join(dir, 'page.html');
    const { io, out, err } = capture();
    assert.equal(await runReport([good, missing, notJson], html, io), 2);
    assert.deepEqual(out, []);
    assert.equal(err.length, 2);
    assert.equal(err[0], `rtp-bench: ${missing}: no such file\n`);
    assert.match(err[1] ?? '', new RegExp(`^rtp-bench: ${notJson.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: is not JSON \\(.*\\)\\n$`));
    assert.equal(existsSync(html), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
