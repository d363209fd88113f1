/**
 * Properties of the ng protocol code: decodeNgMessage (src/ng/message.ts) on anything a UDP socket can deliver, and
 * what the client makes of a decoded reply (callStats in src/ng/client.ts, then summarizeDeleteStats, which
 * src/call.ts runs on every delete reply).
 *
 * Bounded work, by structure: the decoder's position only moves forward; each value is one byte of type plus what
 * it consumes, and the only scans (indexOf for ':' or 'e') either end in bytes the value consumes or end the parse
 * with NgProtocolError, so a datagram costs time linear in its length; the recursion is cut at 64 levels. The
 * properties below check the consequences: no other error type (a stack overflow is a RangeError), no more values
 * decoded than bytes, and the whole property inside its budget (test/helpers/fuzz.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNgMessage, encodeNgMessage, NgProtocolError, type NgDict, type NgValue } from '../../src/ng/message.js';
import { callStats, type DeleteReply } from '../../src/ng/client.js';
import { summarizeDeleteStats } from '../../src/stats/rtpengine-stats.js';
import { checkProperty, mutated } from '../helpers/fuzz.js';
import { ngReplyBody } from '../helpers/ng-fuzz.js';

/** The body, or null for NgProtocolError; anything else thrown fails the property. */
function decodeOrReject(bytes: Uint8Array): { cookie: string; body: NgDict } | null {
  try {
    return decodeNgMessage(bytes);
  } catch (err) {
    if (err instanceof NgProtocolError) return null;
    throw err;
  }
}

/** Values in a decoded body (the body itself included). */
function countValues(v: NgValue): number {
  if (typeof v !== 'object') return 1;
  const children = Array.isArray(v) ? v : Object.values(v);
  return children.reduce<number>((n, c) => n + countValues(c), 1);
}

/** Cookies rtpengine could split off: non-empty, no whitespace. */
const cookie = fc.oneof(fc.stringMatching(/^[!-~]{1,24}$/), fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => !/\s/.test(s)));

/** Any ng value: text of any Unicode (no lone surrogates: the wire is UTF-8), safe integers, lists, dictionaries. */
const { ngDict } = fc.letrec<{ value: NgValue; ngDict: NgDict }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.maxSafeInteger(),
    fc.array(tie('value'), { maxLength: 6 }),
    tie('ngDict'),
  ),
  ngDict: fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), tie('value'), { maxKeys: 6, noNullPrototype: true }),
}));

const message = fc.tuple(cookie, ngDict).map(([c, body]) => encodeNgMessage(c, body));

test('ng: every message encoded decodes to the same cookie and body', (t) => {
  checkProperty(
    t,
    'ng round trip',
    fc.property(cookie, ngDict, (c, body) => {
      assert.deepEqual(decodeNgMessage(encodeNgMessage(c, body)), { cookie: c, body });
    }),
    3000,
  );
});

test('ng: any datagram decodes or is refused with NgProtocolError, never more values than bytes', (t) => {
  let decoded = 0;
  const datagram = fc.oneof(
    fc.uint8Array({ maxLength: 200, size: 'medium' }),
    // Bencode-ish noise behind a cookie, so the decoder gets past the first checks.
    fc
      .array(fc.constantFrom(...'dlie0123456789:-x '.split('')), { maxLength: 120, size: 'large' })
      .map((chars) => Buffer.from(`c d${chars.join('')}`, 'latin1')),
    message,
    mutated(message),
  );
  checkProperty(
    t,
    'ng arbitrary and mutated datagrams',
    fc.property(datagram, (bytes) => {
      const got = decodeOrReject(bytes);
      if (got === null) return;
      decoded++;
      assert.ok(countValues(got.body) <= bytes.length);
    }),
    10000,
  );
  assert.ok(decoded > 1000, `only ${decoded} datagrams decoded: the arbitraries do not reach the deep paths`);
});

test('ng: nesting up to 20,000 levels decodes within 64 or is refused, never overflowing the stack', (t) => {
  checkProperty(
    t,
    'ng deep nesting',
    fc.property(
      fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 20_000 })),
      fc.array(fc.constantFrom('l', 'd1:k'), { minLength: 1, maxLength: 8 }),
      fc.boolean(),
      (depth, openers, closed) => {
        const open: string[] = [];
        for (let i = 0; i < depth; i++) open.push(openers[i % openers.length]!);
        const text = `c d1:a${open.join('')}${closed ? `i7e${'e'.repeat(depth)}e` : ''}`;
        const got = decodeOrReject(Buffer.from(text));
        // The root dictionary is level 0 and its value level 1: `depth` containers put the innermost at depth + 1.
        if (closed && depth + 1 <= 64) {
          assert.ok(got !== null, `${depth} levels refused`);
          let v: NgValue | undefined = got.body.a;
          for (let i = 0; i < depth; i++) v = Array.isArray(v) ? v[0] : (v as NgDict).k;
          assert.equal(v, 7);
        } else {
          assert.equal(got, null);
        }
      },
    ),
    1000,
  );
});

test('ng: huge or malformed declared lengths anywhere in a message are refused, not allocated or scanned for', (t) => {
  const bad = ['99999999:', '9999999999999999999999:', '18446744073709551616:', 'i99999999999999999999e', '-1:', '01:', 'i-0e', 'i01e', '1e3:', ':'];
  checkProperty(
    t,
    'ng huge declared lengths',
    fc.property(message, fc.nat(), fc.constantFrom(...bad), fc.nat({ max: 2 }), (m, at, insert, times) => {
      const cut = m.indexOf(0x20) + 1 + (at % (m.length - m.indexOf(0x20)));
      const bytes = Buffer.concat([m.subarray(0, cut), Buffer.from(insert.repeat(times + 1)), m.subarray(cut)]);
      const got = decodeOrReject(bytes);
      if (got !== null) assert.ok(countValues(got.body) <= bytes.length);
    }),
    3000,
  );
});

// ---- What the client does with a decoded reply -----------------------------------------------------------------------

/** Every number in a JSON-able tree: none may be NaN (a results file would carry null where a count belongs). */
function numbersIn(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (v === null || typeof v !== 'object') return [];
  return Object.values(v).flatMap(numbersIn);
}

test('ng replies: the stats readers take any reply shape without throwing, giving numbers, never NaN', (t) => {
  checkProperty(
    t,
    'ng reply readers',
    fc.property(ngReplyBody, (raw) => {
      const stats = callStats(raw);
      for (const n of numbersIn(stats)) assert.ok(!Number.isNaN(n), `NaN in ${JSON.stringify(stats)}`);
      const reply: DeleteReply = { warning: null, stats, raw };
      const summary = summarizeDeleteStats(reply);
      assert.ok(summary !== null);
      for (const n of numbersIn(summary)) assert.ok(!Number.isNaN(n));
      // Every tag's counters land under its label (or tag) as a field of their own, whatever the name.
      for (const tag of Object.values(stats.tags)) {
        const key = tag.label ?? tag.tag;
        assert.ok(Object.prototype.hasOwnProperty.call(summary.ingress, key), `tag ${JSON.stringify(key)} lost from ingress`);
      }
      assert.ok(Object.getPrototypeOf(summary.ingress) === Object.prototype);
      JSON.stringify(summary);
    }),
    3000,
  );
});
