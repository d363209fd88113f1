/**
 * `rtp-bench scale`: does adding rtpengine workers add capacity? The capacity search (src/commands/capacity.ts)
 * once per worker count, each with its own embedded workers (capped with --worker-cpu so that scaling shows on a
 * small machine) or, with --mesh kubernetes, the worker StatefulSet scaled to the count first
 * (src/mesh/kubernetes/workers-scale.ts), then capacity per worker and the scaling efficiency:
 * capacity(N) / (N/N0 x capacity(N0)), N0 the smallest count (1 = perfectly linear).
 */
import type { ScalePlan } from '../capacity/plan.js';
import { formatSlo } from '../capacity/slo.js';
import { searchPairs, searchSettings, writeSearchFiles, type PairCapacity } from './capacity.js';
import { defaultResultsPath } from '../report/output.js';
import { scalePointsOf, scaleResults } from '../report/search-results.js';
import { scaleText } from '../report/capacity-table.js';
import { renderScaleHtml } from '../report/scale-html.js';
import { EXIT_GENERATOR_LIMITED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, newRunId, type RunIo } from '../session.js';
import { WorkerScaler } from '../mesh/kubernetes/workers-scale.js';

export { scalePoints, type ScalePoint } from '../report/search-results.js';

export async function runScale(scale: ScalePlan, io: RunIo = { err: process.stderr, out: process.stdout }, runId = newRunId()): Promise<number> {
  const first = scale.searches[0]!;
  const status = (line: string): void => {
    if (first.plan.progress !== 'off') io.err.write(`${line}\n`);
  };
  const target = first.plan.target;
  const cap =
    target.kind === 'embedded' && target.cpuCores !== null
      ? `, each capped at ${target.cpuCores} core(s)`
      : target.kind === 'mesh'
        ? ` of StatefulSet ${scale.kubernetes?.statefulSet ?? '?'} (CPU as its manifest sets it)`
        : ' (uncapped: on a small machine they share its cores; --worker-cpu shows scaling)';
  status(`rtp-bench scale ${runId}: ${scale.counts.join(', ')} worker(s)${cap}; SLO ${formatSlo(first.capacity.slo)}`);
  const startedAt = new Date();
  const searches: { workers: number; profile: PairCapacity | null }[] = [];
  let interrupted = false;
  // --mesh kubernetes: each count is the worker StatefulSet scaled to it; the replicas found now are put back at the end.
  const scaler = scale.kubernetes === null ? null : await WorkerScaler.open(first.plan, scale.kubernetes.statefulSet, { status, error: (line) => io.err.write(`rtp-bench: ${line}\n`) });
  if (scale.kubernetes !== null && scaler === null) return EXIT_RUN_FAILED;
  try {
    for (const s of scale.searches) {
      status(`--- ${s.workers} worker(s)`);
      const scaled = (await scaler?.scaleTo(s.workers)) ?? 'ready';
      if (scaled === 'failed') return EXIT_RUN_FAILED;
      if (scaled === 'interrupted') {
        interrupted = true;
        break;
      }
      const searched = await searchPairs(s.plan, s.capacity, io, `${runId}-w${s.workers}`, status);
      if (typeof searched === 'number') return searched;
      searches.push({ workers: s.workers, profile: searched.profiles[0] ?? null });
      if (searched.interrupted) {
        interrupted = true;
        break;
      }
    }
  } finally {
    await scaler?.restore();
  }
  const points = scalePointsOf(searches);
  io.out.write(scaleText(points));
  const results = scaleResults({ runId, startedAt: startedAt.toISOString(), plan: first.plan, slo: formatSlo(first.capacity.slo), search: searchSettings(first.capacity), scale: { points }, searches });
  if (!(await writeSearchFiles(results, () => renderScaleHtml([results]), first.plan.output ?? defaultResultsPath(runId), io, status))) return EXIT_RUN_FAILED;
  if (interrupted) return EXIT_INTERRUPTED;
  return points.some((p) => p.generatorLimited) ? EXIT_GENERATOR_LIMITED : EXIT_OK;
}
