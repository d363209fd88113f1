/**
 * CPU caps for rtpengine workers: the cgroup files written right for v1 and v2 (against temporary folders laid out
 * like /sys/fs/cgroup), clear errors where no cap can be made, and a real capped daemon that the kernel throttles.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCpuCap, CpuCapError, cgroupFlavour } from '../../src/stack/cpu-cap.js';
import { startRtpengine, freeUdpPortRange } from '../../src/stack/rtpengine.js';
import { readProcessUsage } from '../../src/stack/worker-usage.js';
import { removeTempDirs, tempDir } from '../helpers/temp.js';

after(removeTempDirs);

test('cgroup v2: the parent hands the cpu controller down, the child gets cpu.max = quota period', async () => {
  const root = await tempDir('rtp-bench-cg2-');
  writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  writeFileSync(join(root, 'cgroup.subtree_control'), 'memory\n');
  assert.deepEqual(cgroupFlavour(root), { version: 2, base: root });
  const cap = createCpuCap('w1', 0.4, root);
  assert.equal(cap.path, join(root, 'w1'));
  assert.equal(readFileSync(join(root, 'w1', 'cpu.max'), 'utf8'), '40000 100000');
  // A real kernel would have made the file; the fake folder gets the write itself.
  assert.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+cpu');
  cap.add(4242);
  assert.equal(readFileSync(join(root, 'w1', 'cgroup.procs'), 'utf8'), '4242');
  writeFileSync(join(root, 'w1', 'cpu.stat'), 'usage_usec 5\nnr_throttled 3\nthrottled_usec 12500\n');
  assert.equal(cap.throttledMs(), 12.5);
});

test('cgroup v1: the cpu hierarchy gets cfs period and quota', async () => {
  const root = await tempDir('rtp-bench-cg1-');
  mkdirSync(join(root, 'cpu'));
  writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  assert.deepEqual(cgroupFlavour(root), { version: 1, base: join(root, 'cpu') });
  const cap = createCpuCap('w2', 0.05, root);
  assert.equal(readFileSync(join(cap.path, 'cpu.cfs_period_us'), 'utf8'), '100000');
  assert.equal(readFileSync(join(cap.path, 'cpu.cfs_quota_us'), 'utf8'), '5000');
  writeFileSync(join(cap.path, 'cpu.stat'), 'nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n');
  assert.equal(cap.throttledMs(), 2);
});

test('no controller, a name already taken, a cap too small: CpuCapError saying what to do', async () => {
  const bare = await tempDir('rtp-bench-cg0-');
  assert.throws(() => createCpuCap('w', 0.5, bare), (err: unknown) => err instanceof CpuCapError && /no cgroup CPU controller under .*--worker-cpu needs one/.test(err.message));
  const root = await tempDir('rtp-bench-cg1-');
  mkdirSync(join(root, 'cpu'));
  writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  createCpuCap('taken', 0.5, root);
  assert.throws(() => createCpuCap('taken', 0.5, root), /cannot make the CPU cap cgroup .*taken/);
  assert.throws(() => createCpuCap('w', 0.001, root), /below the 0.01 the kernel can enforce/);
});

test('a real rtpengine capped at 0.05 core: it lives in its cgroup, the kernel throttles it, and the cgroup goes with it', async (t) => {
  let cap;
  try {
    cap = createCpuCap(`rtp-bench-test-cap-${process.pid}`, 0.05);
  } catch (err) {
    t.skip(`no cgroup here: ${(err as Error).message}`);
    return;
  }
  const range = await freeUdpPortRange('127.0.0.1', 20);
  const engine = await startRtpengine({ address: '127.0.0.1', portMin: range.min, portMax: range.max });
  try {
    cap.add(engine.pid);
    assert.ok(readFileSync(`/proc/${engine.pid}/cgroup`, 'utf8').includes(cap.path.replace(/^\/sys\/fs\/cgroup(\/cpu)?/, '')), 'the daemon is in its cgroup');
    // Make it busy: the poller threads of an idle rtpengine use almost no CPU, so throttling shows only under work.
    const before = readProcessUsage(engine.pid)!.cpuMs;
    const { NgClient } = await import('../../src/ng/client.js');
    const ng = await NgClient.open({ host: '127.0.0.1', port: engine.ngPort, maxInFlight: 64 });
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 2000) {
      await Promise.all(Array.from({ length: 32 }, () => ng.request('ping').catch(() => undefined)));
      n += 32;
    }
    await ng.close();
    const used = readProcessUsage(engine.pid)!.cpuMs - before;
    const wall = performance.now() - t0;
    t.diagnostic(`${n} pings in ${wall.toFixed(0)} ms; rtpengine used ${used.toFixed(0)} ms of CPU; throttled ${cap.throttledMs()} ms`);
    // 5% of a core over about 2 s is about 100 ms; a period's overrun allows a little more.
    assert.ok(used <= (wall * 0.05) + 30, `CPU ${used} ms in ${wall} ms: over the cap`);
  } finally {
    await engine.stop();
    cap.remove();
  }
  assert.equal(existsSync(cap.path), false, 'the cgroup is removed once its daemon has gone');
});
