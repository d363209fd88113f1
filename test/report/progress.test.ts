import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProgress, type ProgressSnapshot } from '../../src/report/progress.js';

const base: ProgressSnapshot = {
  elapsedMs: 4000, totalMs: 25000, started: 40, live: 38, ok: 1, failed: 1,
  sent: 10000, received: 9900, lost: 100, latenessMaxMs: 1.26, stopping: false,
};

test('progress: rates come from the previous snapshot, loss from lost / (received + lost)', () => {
  const next = { ...base, elapsedMs: 5000, sent: 14000, received: 13850, lost: 150 };
  assert.equal(
    formatProgress(next, base, 50),
    '5s/25s | calls up 38/50 | arrived 40 | ended ok 1 failed 1 | pps tx 4000 rx 3950 | loss 1.07% | late max 1.3 ms',
  );
});

test('progress: no rate before a second snapshot, and a stopping run says so', () => {
  assert.equal(
    formatProgress({ ...base, stopping: true }, null, 50),
    'stopping 4s/25s | calls up 38/50 | arrived 40 | ended ok 1 failed 1 | pps tx 0 rx 0 | loss 1.00% | late max 1.3 ms',
  );
});
