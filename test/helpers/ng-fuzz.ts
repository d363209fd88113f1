/** Arbitrary ng reply bodies for the fuzz tests of the client's reply handling (test/fuzz/ng*.test.ts). */
import fc from 'fast-check';
import type { NgDict, NgValue } from '../../src/ng/message.js';

/**
 * Keys of rtpengine's replies (query and delete statistics, list, offer/answer, errors) and a few that are traps for
 * plain objects, so that the readers go deep instead of meeting unknown keys at the top.
 */
const REPLY_KEYS = [
  'created', 'created_us', 'last signal', 'tags', 'totals', 'RTP', 'RTCP', 'packets', 'bytes', 'errors', 'SSRC', 'tag', 'label',
  'subscribers', 'medias', 'index', 'type', 'protocol', 'codec', 'flags', 'streams', 'local address', 'local port', 'endpoint',
  'advertised endpoint', 'family', 'address', 'port', 'last packet', 'stats', 'average MOS', 'lowest MOS', 'highest MOS',
  'MOS progression', 'entries', 'MOS', 'round-trip time', 'round-trip time leg', 'jitter', 'packet loss', 'reported at', 'samples',
  'cumulative loss', 'result', 'warning', 'error-reason', 'sdp', 'calls', 'statistics',
  '__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty',
];
/** Text where numbers or names are read: what Number() and the name lookups make of it is the point. */
const TRICKY_TEXT = ['', ' ', '12', '-3', '1e3', '1e400', '-1e400', '1.5', 'NaN', 'Infinity', '0x10', 'RTP', 'caller', 'ok', 'error', 'pong', '__proto__'];

const { value, body } = fc.letrec<{ value: NgValue; body: NgDict }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'medium', withCrossShrink: true },
    fc.constantFrom(...TRICKY_TEXT),
    fc.string({ maxLength: 8 }),
    fc.maxSafeInteger(),
    fc.array(tie('value'), { maxLength: 4 }),
    tie('body'),
  ),
  body: fc.dictionary(fc.oneof(fc.constantFrom(...REPLY_KEYS), fc.string({ maxLength: 6 })), tie('value'), { maxKeys: 8, noNullPrototype: true }),
}));

/** A reply body of rtpengine's vocabulary in any shape. */
export const ngReplyBody: fc.Arbitrary<NgDict> = body;
/** Any value such a body holds. */
export const ngReplyValue: fc.Arbitrary<NgValue> = value;
