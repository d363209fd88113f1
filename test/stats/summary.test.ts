import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize, type RunMeasure } from '../../src/stats/summary.js';
import { MetricSet } from '../../src/stats/histogram.js';

function measure(cpuPct: number, threads = 1): RunMeasure {
  return {
    wallMs: 10_000,
    ngRetransmissions: 0,
    io: 'dgram',
    priority: 'normal',
    cost: { cpuUs: cpuPct * 10_000 * 10, packetOps: 1000, wallMs: 10_000, usPerPacketOp: 10, cpuPct },
    costWindow: 'hold',
    threads,
    interrupted: false,
  };
}

function lateSends(p99Ms: number): MetricSet {
  const m = new MetricSet();
  for (let i = 0; i < 98; i++) m.record('sendLatenessMs', 0.5);
  m.record('sendLatenessMs', p99Ms);
  m.record('sendLatenessMs', p99Ms);
  return m;
}

test('late sends with busy generator threads: the generator is the bottleneck, add threads', () => {
  const s = summarize([], lateSends(20), measure(95));
  assert.match(s.generator.saturated ?? '', /^send lateness p99 20\.0 ms with the generator's 1 thread\(s\) at 95% CPU: .*add --threads/);
});

test('late sends with idle generator threads: they waited for a core used by something else', () => {
  const s = summarize([], lateSends(20), measure(22));
  assert.match(s.generator.saturated ?? '', /^send lateness p99 20\.0 ms while the generator used only 22% CPU: its threads waited for a core/);
});

test('punctual sends and spare CPU: no warning; busy threads alone: near its limit', () => {
  assert.equal(summarize([], lateSends(1), measure(30)).generator.saturated, null);
  assert.match(summarize([], lateSends(1), measure(170, 2)).generator.saturated ?? '', /near its limit/);
  assert.equal(summarize([], lateSends(1), measure(150, 2)).generator.saturated, null, '75% per thread is not saturated');
});
