/**
 * A worker rtp-bench did not start, but which serves rtpengine's Prometheus page: with --rtpengine-metrics its own
 * counts land in the timeline next to rtp-bench's, every second of the run.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { freeUdpPortRange, startRtpengine, type LocalRtpengine } from '../src/stack/rtpengine.js';
import { readResults, startCli, tempResults, why } from './helpers/run-cli.js';

const started: LocalRtpengine[] = [];
after(async () => {
  for (const r of started) await r.stop();
});

test('--rtpengine-metrics: a remote worker counts the calls rtp-bench placed on it, as rtpengine itself sees them', async () => {
  const range = await freeUdpPortRange('127.0.0.1', 64);
  const daemon = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max, httpPort: 'auto' });
  started.push(daemon);
  const page = daemon.metricsUrl!.replace(/\/metrics$/, '');
  const out = tempResults();
  try {
    const r = await startCli(['--calls', '4', '--ramp', '20/s', '--hold', '3s', '--codec-pair', 'opus:pcmu', '--rtpengine', `127.0.0.1:${daemon.ngPort}`, '--rtpengine-metrics', page, '--output', out.file, '--progress', 'off']).done;
    assert.equal(r.code, 0, why(r));
    const points = readResults(out.file).timeline.filter((p) => p.callsUp === 4);
    assert.ok(points.length >= 2, 'seconds with all four calls up');
    for (const p of points) {
      const w = p.workers[0]!;
      // rtpengine's own count, not rtp-bench's: its sessions, and its transcoded media, which it counts on each side
      // of a call (docs/rtpengine-behaviour.md#statistics-in-query-and-delete-replies), while all are up.
      assert.equal(w.sessions, 4, `t=${p.t}: rtpengine counted ${w.sessions} sessions`);
      assert.equal(w.transcoded, 8, `t=${p.t}: rtpengine counted ${w.transcoded} transcoded media`);
      assert.equal(w.cpuPct, null, 'no CPU for a process rtp-bench does not own');
    }
  } finally {
    out.cleanup();
  }
});
