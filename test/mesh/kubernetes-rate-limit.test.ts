/** The client-side limits the Kubernetes provisioner sends through (src/mesh/rate-limit.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimit, defaultBurst, TokenBucket } from '../../src/mesh/rate-limit.js';

test('ConcurrencyLimit: at most max holders, first come first served, release is idempotent', async () => {
  const limit = new ConcurrencyLimit(2);
  const order: number[] = [];
  let holding = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 7 }, (_, i) =>
      limit.run(async () => {
        order.push(i);
        holding++;
        peak = Math.max(peak, holding);
        await new Promise((r) => setTimeout(r, 5));
        holding--;
      }),
    ),
  );
  assert.equal(peak, 2);
  assert.equal(limit.maxInFlight, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
  const release = await limit.acquire();
  release();
  release();
  assert.equal(limit.inFlight, 0);
  assert.throws(() => new ConcurrencyLimit(0), /at least 1/);
});

test('TokenBucket: a full bucket at once, then the rate; waiters in order', async () => {
  const bucket = new TokenBucket(50, 3);
  const t0 = performance.now();
  const at: number[] = [];
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      bucket.take().then(() => {
        at.push(performance.now() - t0);
        order.push(i);
      }),
    ),
  );
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(at[2]! < 10, `the first 3 (the burst) at once: ${at.slice(0, 3).map((t) => t.toFixed(1)).join(', ')} ms`);
  // The other 5 at 50/s: the 8th no earlier than 5 * 20 ms.
  assert.ok(at[7]! >= 99, `8th token at ${at[7]!.toFixed(1)} ms`);
  assert.ok(at[7]! < 250, `and not much later (${at[7]!.toFixed(1)} ms)`);
  // Over any window at most burst + rate * window tokens (a late timer lets the next one follow sooner, which is
  // fine: the bucket had saved that token up). Half a token of slack for measuring after the grant.
  for (let i = 0; i < 8; i++) {
    for (let j = i + 1; j < 8; j++) {
      const allowed = 3 + (50 * (at[j]! - at[i]!)) / 1000 + 0.5;
      assert.ok(j - i + 1 <= allowed, `${j - i + 1} tokens within ${(at[j]! - at[i]!).toFixed(1)} ms`);
    }
  }
  assert.ok(bucket.throttledMs > 0);
  assert.equal(defaultBurst(50), 10);
  assert.equal(defaultBurst(2), 1);
  assert.throws(() => new TokenBucket(0), /positive number/);
});
