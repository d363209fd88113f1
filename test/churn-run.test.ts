/**
 * Churn against a real rtpengine: calls arrive at a fixed rate and each ends after its own holding time, so the
 * calls up settle at rate x duration (the offered load) and stay there, unlike a ramp to a plateau.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, tempResults, readResults, why } from './helpers/run-cli.js';

test('churn at 4 calls/s held 3 s carries the 12 Erlang it offers: each call lasts its own 3 s and set-ups keep pace', async (t) => {
  const out = tempResults();
  try {
    const r = await startCli(['--rate', '4/s', '--call-duration', '3s', '--duration', '9s', '--output', out.file, '--progress', 'off']).done;
    assert.equal(r.code, 0, `${why(r)}\n${r.stdout}`);
    const results = readResults(out.file);
    const churn = results.summary.churn!;
    t.diagnostic(`offered ${churn.offeredErlang} Erlang, carried ${churn.carriedErlang}, set-ups ${churn.setupsPerSec}/s`);
    assert.equal(results.summary.calls.attempted, 36);
    assert.equal(results.summary.calls.ok, 36);
    assert.equal(churn.offeredErlang, 12);
    assert.deepEqual(churn.window, { fromT: 3, toT: 9 });
    // Sampled once a second, a call arriving or ending within a few ms of the sample may or may not count: the mean
    // of the six samples stays within half a call of the truth. Calls that all ended together (a ramp) would average
    // far more: by 9 s, 36 would be up.
    assert.ok(Math.abs(churn.carriedErlang! - 12) <= 0.5, `carried ${churn.carriedErlang} Erlang`);
    assert.equal(churn.setupsPerSec, 4);
    assert.equal(churn.failedPerSec, 0);
    // Each call's media ran its own holding time (less its set-up), not until a common end.
    for (const call of results.calls) {
      assert.ok(call.mediaMs !== null && call.mediaMs > 2850 && call.mediaMs < 3100, `call ${call.index}: media for ${call.mediaMs} ms`);
    }
    assert.match(r.stdout, /churn: 4 calls\/s held 3 s: 12\.0 Erlang offered, 1[12]\.\d carried; set-ups 4\.00\/s/);
  } finally {
    out.cleanup();
  }
});
