/**
 * Reading a results file for `rtp-bench report`: a run, a capacity search or a scale search (results/README.md).
 * The parts the report reads are checked here, so that a hand-edited or truncated file fails with its name and one
 * line saying what is wrong, rather than deep in a chart.
 */
import { readFile } from 'node:fs/promises';
import { RESULTS_FORMAT, RUN_FORMATS_READ, type Results } from './results.js';
import type { CapacityResults, ScaleResults } from './search-results.js';

/** A results file of each kind, with where it came from. */
export type ResultsFile =
  | { kind: 'run'; path: string; results: Results }
  | { kind: 'capacity'; path: string; results: CapacityResults }
  | { kind: 'scale'; path: string; results: ScaleResults };

export type ResultsKind = ResultsFile['kind'];

/** How a kind is named in messages. */
export const KIND_NAMES: Readonly<Record<ResultsKind, string>> = { run: 'a run', capacity: 'a capacity search (kind: capacity)', scale: 'a scale search (kind: scale)' };

/** A file `report` cannot use; the message names the file and says what is wrong, on one line. */
export class ResultsFileError extends Error {
  override readonly name = 'ResultsFileError';

  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and checks one results file of any kind. Throws ResultsFileError. */
export async function readResultsFile(path: string): Promise<ResultsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ResultsFileError(path, 'no such file');
    if (code === 'EISDIR') throw new ResultsFileError(path, 'is a directory, not a results file');
    if (code === 'EACCES' || code === 'EPERM') throw new ResultsFileError(path, 'cannot be read: permission denied');
    throw new ResultsFileError(path, `cannot be read: ${oneLine(err instanceof Error ? err.message : String(err))}`);
  }
  if (text.trim() === '') throw new ResultsFileError(path, 'is empty, not an rtp-bench results file');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ResultsFileError(path, `is not JSON (${oneLine(err instanceof Error ? err.message : String(err))})`);
  }
  return checkResults(path, data);
}

type Problem = (why: string) => ResultsFileError;

/** The checks of readResultsFile on parsed JSON: which kind, a format this rtp-bench reads, the parts report uses. */
export function checkResults(path: string, data: unknown): ResultsFile {
  const not: Problem = (why) => new ResultsFileError(path, `is not an rtp-bench results file: ${why}`);
  if (!isObject(data)) throw not(`expected a JSON object, found ${Array.isArray(data) ? 'an array' : data === null ? 'null' : typeof data}`);
  if (!('format' in data)) throw not('it has no "format" field');
  const kind = data['kind'];
  if (kind !== undefined && kind !== 'capacity' && kind !== 'scale') {
    const shown = oneLine(JSON.stringify(kind) ?? String(kind)).slice(0, 40);
    throw new ResultsFileError(path, `has kind ${shown}, which this rtp-bench does not read: expected a run (no kind), capacity or scale`);
  }
  checkFormat(path, data['format'], kind ?? 'run');
  if (kind === 'capacity') {
    checkSearch(not, data);
    if (!Array.isArray(data['profiles'])) throw not('it has no "profiles" list');
    data['profiles'].forEach((p, i) => checkProfile(not, p, `profiles[${i}]`));
    if (data['environment'] !== null && !isObject(data['environment'])) throw not('"environment" is not an object');
    return { kind, path, results: data as unknown as CapacityResults };
  }
  if (kind === 'scale') {
    checkSearch(not, data);
    if (!isObject(data['scale']) || !Array.isArray(data['scale']['points'])) throw not('it has no "scale.points" list');
    for (const [i, p] of data['scale']['points'].entries()) {
      if (!isObject(p) || typeof p['workers'] !== 'number') throw not(`its scale.points[${i}] has no "workers" count`);
    }
    if (!Array.isArray(data['searches'])) throw not('it has no "searches" list');
    for (const [i, s] of data['searches'].entries()) {
      if (!isObject(s) || typeof s['workers'] !== 'number') throw not(`its searches[${i}] has no "workers" count`);
      if (s['profile'] !== null) checkProfile(not, s['profile'], `searches[${i}].profile`);
    }
    return { kind, path, results: data as unknown as ScaleResults };
  }
  return { kind: 'run', path, results: checkRun(not, data) };
}

function checkFormat(path: string, format: unknown, kind: ResultsKind): void {
  if (kind === 'run' ? typeof format === 'number' && RUN_FORMATS_READ.includes(format) : format === RESULTS_FORMAT) return;
  const shown = oneLine(JSON.stringify(format) ?? String(format)).slice(0, 40);
  if (kind !== 'run' && format === 2) {
    // Written by the rtp-bench before the layout changed: say so, rather than "not a results file" on a missing field.
    throw new ResultsFileError(path, `is ${KIND_NAMES[kind]} in results format 2, whose layout (result, steps[].outcome) this rtp-bench no longer reads: it reads format ${RESULTS_FORMAT}; run the search again`);
  }
  const reads = kind === 'run' ? `runs in format ${RUN_FORMATS_READ.join(' or ')}` : `${kind} searches in format ${RESULTS_FORMAT}`;
  throw new ResultsFileError(path, `has results format ${shown}; this rtp-bench reads ${reads}`);
}

/** What a search file has besides its plan: its SLO and how it stepped. */
function checkSearch(not: Problem, data: Record<string, unknown>): void {
  checkPlanAndId(not, data);
  if (typeof data['slo'] !== 'string') throw not('it has no "slo" text');
  const search = data['search'];
  if (!isObject(search) || typeof search['stepHoldMs'] !== 'number' || typeof search['start'] !== 'number' || typeof search['max'] !== 'number' || !isObject(search['resolution'])) {
    throw not('it has no "search" settings (start, max, stepHoldMs, resolution)');
  }
}

function checkPlanAndId(not: Problem, data: Record<string, unknown>): void {
  if (!isObject(data['plan'])) throw not('it has no "plan" object');
  const plan = data['plan'];
  if (!isObject(plan['codecPair']) || !isObject(plan['target'])) throw not('its plan has no codec pair or target');
  if (typeof data['runId'] !== 'string') throw not('it has no "runId"');
}

function checkProfile(not: Problem, p: unknown, where: string): void {
  if (!isObject(p) || typeof p['codecPair'] !== 'string') throw not(`its ${where} has no "codecPair"`);
  const c = p['capacity'];
  if (!isObject(c)) throw not(`its ${where} has no "capacity" object`);
  if (!Array.isArray(c['steps'])) throw not(`its ${where}.capacity has no "steps" list`);
  for (const [k, s] of c['steps'].entries()) {
    if (!isObject(s) || typeof s['calls'] !== 'number' || typeof s['pass'] !== 'boolean' || !isObject(s['figures']) || !Array.isArray(s['broke']) || !Array.isArray(s['workers']) || !isObject(s['window'])) {
      throw not(`its ${where}.capacity.steps[${k}] lacks calls, pass, figures, broke, workers or window`);
    }
  }
  if (!Array.isArray(p['timeline'])) throw not(`its ${where} has no "timeline" list`);
}

function checkRun(not: Problem, data: Record<string, unknown>): Results {
  if (!isObject(data['summary'])) throw not('it has no "summary" object');
  const summary = data['summary'];
  for (const key of ['calls', 'packets', 'generator']) {
    if (!isObject(summary[key])) throw not(`its summary has no "${key}" object`);
  }
  if (!isObject((summary['calls'] as Record<string, unknown>)['failedByCause'])) throw not('its summary.calls has no "failedByCause" object');
  checkPlanAndId(not, data);
  if (!isObject(data['environment']) || !isObject(data['environment']['rtpengine'])) throw not('it has no "environment.rtpengine"');
  const rtpengine = data['environment']['rtpengine'];
  if (!Array.isArray(rtpengine['workers'])) throw not('its environment.rtpengine has no "workers" list');
  if ('histograms' in data && !isObject(data['histograms'])) throw not('"histograms" is not an object');
  if ('calls' in data && !Array.isArray(data['calls'])) throw not('"calls" is not a list');
  return {
    ...(data as unknown as Results),
    histograms: (data['histograms'] as Record<string, string> | undefined) ?? {},
    calls: (data['calls'] as Results['calls'] | undefined) ?? [],
    // Older runs have no per-worker figures: read as none.
    summary: { ...(summary as unknown as Results['summary']), workers: (summary['workers'] as Results['summary']['workers'] | undefined) ?? [] },
  };
}
