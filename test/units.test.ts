import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  UnitError,
  parseDurationMs,
  parseEndpoints,
  parsePercent,
  parsePortRange,
  parseRate,
  quoteValue,
} from '../src/units.js';

/** Runs `parse` on each bad input and checks the whole message, so a vaguer wording fails the test. */
function rejects(parse: (text: string) => unknown, cases: ReadonlyArray<readonly [string, string]>): void {
  for (const [input, message] of cases) {
    assert.throws(
      () => parse(input),
      (err: unknown) => {
        assert.ok(err instanceof UnitError, `${JSON.stringify(input)} threw ${String(err)}`);
        assert.equal(err.message, message, `message for ${JSON.stringify(input)}`);
        return true;
      },
    );
  }
}

test('parseDurationMs reads single units, compounds and decimals', () => {
  const cases: ReadonlyArray<readonly [string, number]> = [
    ['20s', 20_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1_500],
    ['0.25m', 15_000],
    ['0s', 0],
    ['0', 0],
    [' 20S ', 20_000],
  ];
  for (const [input, ms] of cases) assert.equal(parseDurationMs(input), ms, input);
});

test('parseDurationMs rejects bare numbers, junk, disorder and sub-millisecond values', () => {
  const expected = 'expected a duration like 20s, 2m, 1h, 500ms or 1m30s';
  rejects(parseDurationMs, [
    ['20', `20 has no unit: ${expected} (did you mean 20s?)`],
    ['1.5', `1.5 has no unit: ${expected} (did you mean 1.5s?)`],
    ['', `"" is empty: ${expected}`],
    ['fast', `fast is not a duration: ${expected}`],
    ['20sec', `20sec is not a duration: ${expected}`],
    ['20 s', `"20 s" is not a duration: ${expected}`],
    ['-5s', `-5s is negative: ${expected}`],
    ['30s1m', '30s1m repeats a unit or has them out of order: expected largest unit first, e.g. 1h30m or 1m30s'],
    ['1s1s', '1s1s repeats a unit or has them out of order: expected largest unit first, e.g. 1h30m or 1m30s'],
    ['0.5ms', `0.5ms is not a whole number of milliseconds: ${expected}`],
  ]);
});

test('parseRate returns calls per second; a bare number is per second', () => {
  const cases: ReadonlyArray<readonly [string, number]> = [
    ['10/s', 10],
    ['10', 10],
    ['600/min', 10],
    ['30/m', 0.5],
    ['3600/h', 1],
    ['0.5/s', 0.5],
    ['5/sec', 5],
  ];
  for (const [input, perSec] of cases) assert.equal(parseRate(input), perSec, input);
});

test('parseRate rejects words, unknown units and non-positive rates', () => {
  const expected = 'expected calls per second like 10/s, 600/min or 10 (a bare number is per second)';
  rejects(parseRate, [
    ['fast', `fast is not a rate: ${expected}`],
    ['', `"" is not a rate: ${expected}`],
    ['/s', `/s is not a rate: ${expected}`],
    ['10/day', `10/day has an unknown unit /day: ${expected}; units: /s, /min, /h`],
    ['0/s', `0/s is not more than 0: ${expected}`],
    ['-3', `-3 is not more than 0: ${expected}`],
  ]);
});

test('parsePortRange returns both ends, inclusive', () => {
  assert.deepEqual(parsePortRange('20000-29999'), { min: 20000, max: 29999 });
  assert.deepEqual(parsePortRange('1-65535'), { min: 1, max: 65535 });
  assert.deepEqual(parsePortRange('30001-30001'), { min: 30001, max: 30001 });
  assert.deepEqual(parsePortRange(' 100 - 200 '), { min: 100, max: 200 });
});

test('parsePortRange rejects single ports, zero, overflow and backwards ranges', () => {
  const expected = 'expected LO-HI with ports from 1 to 65535, e.g. 20000-29999';
  rejects(parsePortRange, [
    ['20000', `20000 is not a port range: ${expected}`],
    ['20000-', `20000- is not a port range: ${expected}`],
    ['a-b', `a-b is not a port range: ${expected}`],
    ['0-100', `0-100 has port 0, out of range: ${expected}`],
    ['60000-70000', `60000-70000 has port 70000, out of range: ${expected}`],
    ['30000-20000', `30000-20000 runs backwards (LO is above HI): ${expected}`],
  ]);
});

test('parseEndpoints reads IPv4, host names and bracketed IPv6, bracket-free in the result', () => {
  assert.deepEqual(parseEndpoints('127.0.0.1:22222,10.0.0.5:2223'), [
    { host: '127.0.0.1', port: 22222 },
    { host: '10.0.0.5', port: 2223 },
  ]);
  assert.deepEqual(parseEndpoints('[::1]:22222'), [{ host: '::1', port: 22222 }]);
  assert.deepEqual(parseEndpoints('rtpengine-0.rtpengine.svc:22222, localhost:1'), [
    { host: 'rtpengine-0.rtpengine.svc', port: 22222 },
    { host: 'localhost', port: 1 },
  ]);
});

test('parseEndpoints names the item at fault', () => {
  const expected =
    'expected HOST:PORT[,HOST:PORT...] with an IPv4 address, a host name or [IPv6], e.g. 127.0.0.1:22222 or [::1]:22222';
  rejects(parseEndpoints, [
    ['127.0.0.1', `127.0.0.1 has no port: ${expected}`],
    ['127.0.0.1:', `127.0.0.1: has port "", not a number: ${expected}`],
    ['127.0.0.1:0', `127.0.0.1:0 has port 0, out of range: ${expected}`],
    ['127.0.0.1:65536', `127.0.0.1:65536 has port 65536, out of range: ${expected}`],
    ['127.0.0.1:x', `127.0.0.1:x has port x, not a number: ${expected}`],
    [':22222', `:22222 has no host: ${expected}`],
    ['999.0.0.1:22222', `999.0.0.1:22222 has host 999.0.0.1, not a valid IPv4 address: ${expected}`],
    ['bad_host:22222', `bad_host:22222 has host bad_host, not a valid host name: ${expected}`],
    ['::1:22222', '::1:22222 looks like an IPv6 address without brackets: expected [ADDRESS]:PORT, e.g. [::1]:22222'],
    ['[::1]', `[::1] has no port: ${expected}`],
    ['[nope]:1', `[nope]:1 has nope in brackets, which is not an IPv6 address: ${expected}`],
    ['', `"" is empty: ${expected}`],
    ['127.0.0.1:1,,127.0.0.1:2', `127.0.0.1:1,,127.0.0.1:2 has an empty item: ${expected}`],
    ['127.0.0.1:1,127.0.0.1:1', '127.0.0.1:1 is listed twice: expected each rtpengine instance once'],
  ]);
});

test('parsePercent accepts a plain number or a trailing %, 0 to 100', () => {
  const cases: ReadonlyArray<readonly [string, number]> = [
    ['0.5', 0.5],
    ['0.5%', 0.5],
    ['0', 0],
    ['100%', 100],
    ['.25', 0.25],
  ];
  for (const [input, pct] of cases) assert.equal(parsePercent(input), pct, input);
});

test('parsePercent rejects junk and values outside 0..100', () => {
  const expected = 'expected a percentage from 0 to 100, e.g. 0.5 or 0.5%';
  rejects(parsePercent, [
    ['half', `half is not a number: ${expected}`],
    ['%', `% is not a number: ${expected}`],
    ['1e2', `1e2 is not a number: ${expected}`],
    ['120', `120 is out of range: ${expected}`],
    ['-1%', `-1% is out of range: ${expected}`],
  ]);
});

test('UnitError keeps the parts plan.ts composes messages from', () => {
  const err = new UnitError('20', 'has no unit', 'a duration');
  assert.equal(err.value, '20');
  assert.equal(err.problem, 'has no unit');
  assert.equal(err.expected, 'a duration');
  assert.equal(err.message, '20 has no unit: expected a duration');
  assert.equal(quoteValue(''), '""');
  assert.equal(quoteValue('a b'), '"a b"');
  assert.equal(quoteValue('10.0.0.1:22222'), '10.0.0.1:22222');
});
