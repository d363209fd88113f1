/**
 * --metrics-listen for one run: the registry (src/metrics/live.ts) and its HTTP endpoint (src/metrics/server.ts),
 * started together before the run and closed together at its end (also after Ctrl-C: run.ts closes it in its finally).
 */
import type { RunPlan } from '../run-plan.js';
import { LiveMetrics } from './live.js';
import { MetricsServer } from './server.js';
import type { MetricsListen } from './listen.js';

export interface LiveMetricsRun {
  metrics: LiveMetrics;
  url: string;
  /** How long close({ lastScrape: true }) may wait for the scraper (0: nobody is scraping): for a status line. */
  lastScrapeWaitMs(): number;
  close(options?: { lastScrape?: boolean }): Promise<void>;
}

/** The run's metrics, served; a string says why they could not be (the port in use). */
export async function startLiveMetrics(plan: RunPlan, listen: MetricsListen, runId: string): Promise<LiveMetricsRun | string> {
  const metrics = new LiveMetrics({
    runId,
    shard: plan.shard?.index ?? 1,
    shards: plan.shard?.count ?? 1,
    codecPair: `${plan.codecPair.a.name}:${plan.codecPair.b.name}`,
    target: plan.mesh === null ? plan.target.kind : `mesh-${plan.mesh.kind}`,
    calls: plan.calls,
  });
  const server = await MetricsServer.start(listen, metrics.registry);
  if (typeof server === 'string') return server;
  let closed = false;
  return {
    metrics,
    url: server.url,
    lastScrapeWaitMs: () => server.lastScrapeWaitMs,
    close: async (options = {}) => {
      if (closed) return;
      closed = true;
      await server.close(options);
    },
  };
}
