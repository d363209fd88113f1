/**
 * A generator starved of CPU on purpose (its process in a cgroup capped at 5% of a core) against an rtpengine with
 * CPU to spare: what it reports must be true about what happened. Sent is what rtpengine's own counters received;
 * nobody sent a duplicate, so none is reported; every packet that did not arrive is accounted to the generator or
 * the network; and the run says plainly that the generator, capped by its cgroup, limited it, and exits 4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRtpengine, freeUdpPortRange } from '../src/stack/rtpengine.js';
import { jsonSummary, readResults, startCli, tempResults } from './helpers/run-cli.js';
import { cpuCappedCgroup, inCgroup } from './helpers/cgroup.js';
import { EXIT_GENERATOR_LIMITED } from '../src/commands/run.js';

for (const io of ['native', 'dgram'] as const) {
  test(`${io} I/O, generator capped at 5% of a core: sent = rtpengine's received, no invented duplicates, every loss accounted, exit 4 naming the cap`, async (t) => {
    const cgroup = cpuCappedCgroup(0.05);
    if (typeof cgroup === 'string') {
      t.skip(cgroup);
      return;
    }
    const range = await freeUdpPortRange('127.0.0.1', 400);
    const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
    const out = tempResults();
    try {
      if (io === 'native') {
        const { nativeTransportError } = await import('../workers/native/transport.js');
        if (nativeTransportError() !== null) {
          t.skip('the native media I/O addon is not built');
          return;
        }
      }
      const r = await startCli(
        ['--rtpengine', `127.0.0.1:${engine.ngPort}`, '--calls', '40', '--ramp', '50/s', '--hold', '5s', '--codec-pair', 'pcmu:pcmu', '--media-priority', 'normal', '--io', io, '--output', out.file, '--json', '--progress', 'off'],
        { prefix: inCgroup(cgroup) },
      ).done;
      assert.equal(r.code, EXIT_GENERATOR_LIMITED, r.stderr);
      const s = jsonSummary(r.stdout);
      const d = s.generator.drops;
      t.diagnostic(
        `sent ${s.packets.sent}, received ${s.packets.received}, duplicates ${s.packets.duplicates}, lost ${s.packets.lost}, ` +
          `generator drops: skipped ${d.skipped}, send failed ${d.sendFailed}, receive queue ${d.receiveQueue}, truncated ${d.truncated}; ${s.generator.limited}`,
      );
      assert.match(s.generator.limited ?? '', new RegExp(`^GENERATOR-LIMITED: .*starved of CPU by a CPU cap: its cgroup ${cgroup.path} allows 5\\.0% of one core`));

      const results = readResults(out.file);
      let ingress = 0;
      for (const call of results.calls) {
        for (const stream of call.streams) {
          const leg = stream.direction === 'a->b' ? 'caller' : 'callee';
          // rtpengine counts what reached it on that leg: exactly what the generator says it sent.
          assert.equal(call.rtpengine?.ingress[leg]?.packets, stream.sent, `call ${call.index} ${stream.direction}: rtpengine's ingress`);
          ingress += stream.sent;
        }
      }
      assert.equal(ingress, s.packets.sent);
      assert.equal(s.packets.duplicates, 0, 'nobody sent a duplicate');
      // rtpengine had CPU to spare: whatever did not arrive was dropped by the generator itself.
      assert.equal(s.packets.lost, 0, "the system's loss");
      assert.equal(s.packets.missing, d.receiveQueue ?? 0, "what did not arrive is the generator's receive-queue drops");
    } finally {
      out.cleanup();
      await engine.stop();
      cgroup.remove();
    }
  });
}
