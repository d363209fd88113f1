import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNgMessage, encodeNgMessage, NgProtocolError, type NgDict } from '../../src/ng/message.js';

test('encodes cookie, space and bencoded dictionary with sorted keys', () => {
  assert.equal(encodeNgMessage('5a1_1', { command: 'ping' }).toString(), '5a1_1 d7:command4:pinge');
  assert.equal(
    encodeNgMessage('c9', { 'from-tag': 'ta', 'call-id': 'abc', command: 'delete', 'delete delay': 0 }).toString(),
    'c9 d7:call-id3:abc7:command6:delete12:delete delayi0e8:from-tag2:tae',
  );
  assert.equal(
    encodeNgMessage('x', { command: 'offer', replace: ['origin', 'session connection'], codec: { mask: ['opus'], transcode: ['PCMU'] }, ptime: -20 }).toString(),
    'x d5:codecd4:maskl4:opuse9:transcodel4:PCMUee7:command5:offer5:ptimei-20e7:replacel6:origin18:session connectionee',
  );
});

test('encodes UTF-8 strings with their byte length', () => {
  assert.deepEqual([...encodeNgMessage('k', { label: 'é' })], [...Buffer.from('k d5:label2:\xc3\xa9e', 'latin1')]);
});

test('refuses cookies rtpengine could not split off', () => {
  assert.throws(() => encodeNgMessage('', { command: 'ping' }), NgProtocolError);
  assert.throws(() => encodeNgMessage('a b', { command: 'ping' }), NgProtocolError);
});

test('refuses numbers bencode cannot carry instead of truncating them', () => {
  assert.throws(() => encodeNgMessage('c', { command: 'offer', ptime: 20.5 }), /ptime = 20.5.*whole numbers/);
  assert.throws(() => encodeNgMessage('c', { command: 'offer', codec: { list: [1, Number.NaN] } }), /codec\.list\[1\]/);
});

const good: [string, string, string, NgDict][] = [
  ['ping reply', '5a1_1 d6:result4:ponge', '5a1_1', { result: 'pong' }],
  ['empty dictionary', 'c de', 'c', {}],
  ['integers', 'c d0:i0e1:ai42e1:bi-7e1:ci1795816819ee', 'c', { '': 0, a: 42, b: -7, c: 1795816819 }],
  [
    'nested dictionaries and lists',
    'k1 d6:result2:ok6:totalsd3:RTPd7:packetsi20e5:bytesi3440e6:errorsi0eee5:callsl2:c12:c2ld1:xi1eeeee',
    'k1',
    { result: 'ok', totals: { RTP: { packets: 20, bytes: 3440, errors: 0 } }, calls: ['c1', 'c2', [{ x: 1 }]] },
  ],
  ['error reply', 'z9 d6:result5:error12:error-reason15:Unknown call-ide', 'z9', { result: 'error', 'error-reason': 'Unknown call-id' }],
  ['byte strings as UTF-8', 'u d3:sdp2:\xc3\xa9e', 'u', { sdp: 'é' }],
  ['a string with spaces and colons', 'c d1:s9:a: b c:d;e', 'c', { s: 'a: b c:d;' }],
  ['empty string', 'c d1:s0:e', 'c', { s: '' }],
];

for (const [name, input, cookie, body] of good) {
  test(`decodes ${name}`, () => {
    const decoded = decodeNgMessage(Buffer.from(input, 'latin1'));
    assert.equal(decoded.cookie, cookie);
    assert.deepEqual(decoded.body, body);
  });
}

test('decodes from a Uint8Array view at an offset', () => {
  const backing = Buffer.from('xxxx5a1_1 d7:command4:pingeyyyy');
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 4, backing.length - 8);
  assert.deepEqual(decodeNgMessage(view), { cookie: '5a1_1', body: { command: 'ping' } });
});

test('round-trips what it encodes', () => {
  const body: NgDict = { command: 'offer', 'call-id': 'c-1', flags: ['a', 'b'], codec: { mask: ['opus'] }, n: -3, z: 0 };
  assert.deepEqual(decodeNgMessage(encodeNgMessage('rt_1', body)), { cookie: 'rt_1', body });
});

test('a key named __proto__ becomes a property, not the prototype', () => {
  const { body } = decodeNgMessage(Buffer.from('c d9:__proto__d1:ai1eee'));
  assert.equal(Object.getPrototypeOf(body), Object.prototype);
  assert.deepEqual(Object.keys(body), ['__proto__']);
});

const bad: [string, string, RegExp][] = [
  ['no space', '5a1_1d7:command4:pinge', /no space/],
  ['empty cookie', ' d7:command4:pinge', /empty cookie/],
  ['nothing after the cookie', '5a1_1 ', /no body/],
  ['a list body', 'c li1ee', /not a bencoded dictionary/],
  ['an integer body', 'c i42e', /not a bencoded dictionary/],
  ['a string body', 'c 4:ping', /not a bencoded dictionary/],
  ['garbage', 'hello world', /not a bencoded dictionary/],
  ['a missing final e', 'c d7:command4:ping', /truncated/],
  ['a cut string', 'c d7:command10:ping', /truncated/],
  ['a cut integer', 'c d1:ai12', /truncated/],
  ['a cut list', 'c d1:al', /truncated/],
  ['a lone d', 'c d', /truncated/],
  ['a cut length', 'c d7:command4', /truncated/],
  ['a non-string key', 'c di1ei2ee', /key .* is not a string/],
  ['a negative length (bencode@4 loops forever on it)', 'c d-3:', /key .* is not a string/],
  ['a negative length inside', 'c d1:a-3:e', /unexpected "-"/],
  ['a float', 'c d1:ai1.5ee', /invalid integer/],
  ['an empty integer', 'c d1:aiee', /invalid integer/],
  ['minus zero', 'c d1:ai-0ee', /invalid integer/],
  ['leading zeros', 'c d1:ai007ee', /invalid integer/],
  ['an integer beyond 2^53', 'c d1:ai9007199254740993ee', /too large/],
  ['a leading-zero length', 'c d01:ai1ee', /invalid string length/],
  ['an unknown type byte', 'c d1:axe', /unexpected "x"/],
  ['trailing bytes', 'c d1:ai1eeXYZ', /3 unexpected bytes/],
  ['two dictionaries', 'c dede', /2 unexpected bytes/],
];

for (const [name, input, message] of bad) {
  test(`rejects ${name}`, () => {
    assert.throws(() => decodeNgMessage(Buffer.from(input, 'latin1')), (err: unknown) => {
      assert.ok(err instanceof NgProtocolError, `expected NgProtocolError, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    });
  });
}

test('rejects nesting deeper than any reply without exhausting the stack', () => {
  const deep = 'c d1:a' + 'l'.repeat(10_000) + 'e'.repeat(10_000) + 'e';
  assert.throws(() => decodeNgMessage(Buffer.from(deep)), /nesting deeper than 64/);
});
