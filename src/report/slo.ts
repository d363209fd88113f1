/** Judging a run against its SLO flags (k6 calls them thresholds). Each missed objective is named with both values. */
import type { Slo } from '../run-plan.js';
import type { Summary } from '../stats/summary.js';

export interface SloCheck {
  flag: string;
  limit: number;
  actual: number | null;
  passed: boolean;
}

export interface SloVerdict {
  passed: boolean;
  checks: SloCheck[];
}

export function checkSlo(slo: Slo, s: Summary): SloVerdict {
  const checks: SloCheck[] = [];
  const atMost = (flag: string, limit: number | undefined, actual: number | null | undefined): void => {
    if (limit === undefined) return;
    const a = actual ?? null;
    checks.push({ flag, limit, actual: a, passed: a !== null && a <= limit });
  };
  atMost('--max-loss', slo.maxLossPct, s.packets.sent > 0 ? s.packets.lossPct : null);
  atMost('--max-jitter', slo.maxJitterMs, s.jitterMs?.p99);
  atMost('--max-latency', slo.maxLatencyMs, s.latencyMs?.p99);
  atMost('--max-setup', slo.maxSetupMs, s.setupMs?.p99);
  atMost('--max-failed', slo.maxFailedPct, s.calls.attempted > 0 ? (s.calls.failed * 100) / s.calls.attempted : null);
  if (slo.minMos !== undefined) {
    const actual = s.mos?.p50 ?? null;
    checks.push({ flag: '--min-mos', limit: slo.minMos, actual, passed: actual !== null && actual >= slo.minMos });
  }
  return { passed: checks.every((c) => c.passed), checks };
}
