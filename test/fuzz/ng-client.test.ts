/**
 * The ng client (src/ng/client.ts) against a hostile "rtpengine" on a real UDP socket on 127.0.0.1: garbage
 * datagrams, replies with cookies it never sent, replies to its own cookie that are not a dictionary, and replies in
 * rtpengine's vocabulary but any shape. Every datagram that is not a reply to a request in flight is counted in
 * strayReplies and otherwise ignored; the pending request is answered or times out as if the garbage had not come;
 * a reply in any shape settles its request with a value or NgError/NgProtocolError, never another exception.
 *
 * Ordering instead of sleeps: the fake server sends its garbage before the real reply from the same socket, and
 * loopback delivers one socket's datagrams in order, so once the reply has settled the request every piece of
 * garbage before it has been handled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import fc from 'fast-check';
import { NgClient, NgError, NgProtocolError, NgTimeoutError } from '../../src/ng/client.js';
import { encodeNgMessage, type NgDict } from '../../src/ng/message.js';
import { checkAsyncProperty } from '../helpers/fuzz.js';
import { ngReplyBody, ngReplyValue } from '../helpers/ng-fuzz.js';

const HOST = '127.0.0.1';

/** What the fake rtpengine sends back for the first datagram of each cookie (retransmissions get nothing). */
type Script = (cookie: string) => Uint8Array[];

let server: Socket;
let script: Script = () => [];
const clients: NgClient[] = [];

before(async () => {
  server = createSocket('udp4');
  server.bind(0, HOST);
  await once(server, 'listening');
  const seen = new Set<string>();
  server.on('message', (msg, from) => {
    const cookie = msg.subarray(0, msg.indexOf(0x20)).toString();
    if (seen.has(cookie)) return;
    seen.add(cookie);
    for (const d of script(cookie)) server.send(d, from.port, from.address);
  });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  server.close();
});

async function client(timeoutMs: number, retransmitMs: number): Promise<NgClient> {
  const c = await NgClient.open({ host: HOST, port: server.address().port, timeoutMs, retransmitMs });
  clients.push(c);
  return c;
}

function pong(cookie: string): Uint8Array {
  return encodeNgMessage(cookie, { result: 'pong' });
}

/** A datagram that is no reply to `cookie`'s request, made once the cookie is known. */
const garbage: fc.Arbitrary<(cookie: string) => Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 300, size: 'medium' }).map((b) => () => b),
  // A well-formed reply for a cookie this client never used ("stray-" cannot start one of its random prefixes
  // followed by "_<counter>" at the same place).
  fc.tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), ngReplyBody).map(([c, body]) => () => encodeNgMessage(`stray-${c}`, body)),
  // The right cookie, a body that is not one bencoded dictionary.
  fc.constantFrom('le', 'i5e', '3:abc', 'd', '', 'de trailing', 'l', 'd3:abc', 'd6:result2:ok', 'dee', 'd6:resulti1eee').map((tail) => (cookie: string) => Buffer.from(`${cookie} ${tail}`)),
  fc.uint8Array({ maxLength: 100, size: 'medium' }).map((b) => (cookie: string) => Buffer.concat([Buffer.from(`${cookie} x`), b])),
  // The right cookie and the real reply, cut short (empty included); the cookie alone has no space to split at.
  fc.nat().map((n) => (cookie: string) => {
    const full = pong(cookie);
    return full.subarray(0, n % full.length);
  }),
);

test('ng client: garbage before the reply is counted as stray and the request is answered', async (t) => {
  const c = await client(5000, 1000);
  await checkAsyncProperty(
    t,
    'ng client garbage then reply',
    fc.asyncProperty(fc.array(garbage, { maxLength: 20 }), async (junk) => {
      script = (cookie) => [...junk.map((make) => make(cookie)), pong(cookie)];
      const before = c.strayReplies;
      assert.deepEqual(await c.request('ping'), { result: 'pong' });
      assert.equal(c.strayReplies - before, junk.length);
      assert.equal(c.inFlight, 0);
    }),
    300,
  );
});

test('ng client: garbage and no reply times out as usual, counted as stray', async (t) => {
  const c = await client(60, 20);
  await checkAsyncProperty(
    t,
    'ng client garbage then silence',
    fc.asyncProperty(fc.array(garbage, { minLength: 1, maxLength: 10 }), async (junk) => {
      const before = c.strayReplies;
      script = (cookie) => junk.map((make) => make(cookie));
      await assert.rejects(c.request('offer'), (err: unknown) => err instanceof NgTimeoutError && err.sends >= 1);
      // A request the server answers: its reply comes after all the garbage above (see the module comment).
      script = (cookie) => [pong(cookie)];
      await c.request('ping');
      assert.equal(c.strayReplies - before, junk.length);
      assert.equal(c.inFlight, 0);
    }),
    25,
  );
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n';

/** Each public request method, called as src/call.ts and the stack call it. */
const CALLS: Record<string, (c: NgClient) => Promise<unknown>> = {
  ping: (c) => c.ping(),
  offer: (c) => c.offer({ callId: 'c', fromTag: 'a', sdp: SDP }),
  answer: (c) => c.answer({ callId: 'c', fromTag: 'a', toTag: 'b', sdp: SDP }),
  delete: (c) => c.delete({ callId: 'c', fromTag: 'a', deleteDelay: 0 }),
  query: (c) => c.query('c'),
  list: (c) => c.list(10),
  statistics: (c) => c.statistics(),
};

test('ng client: a reply of any shape settles its request with a value, NgError or NgProtocolError', async (t) => {
  const c = await client(5000, 1000);
  let resolved = 0;
  await checkAsyncProperty(
    t,
    'ng client replies of any shape',
    fc.asyncProperty(
      fc.constantFrom(...Object.keys(CALLS)),
      // Mostly `result: ok`, so the readers behind the result check get the body, and often the one field a
      // method reads first (list's calls, offer's sdp) holding anything.
      fc
        .tuple(
          ngReplyBody,
          fc.constantFrom<NgDict['result'] | undefined>('ok', 'ok', 'ok', 'pong', 'error', undefined),
          fc.option(fc.record({ calls: fc.array(ngReplyValue, { maxLength: 5 }), sdp: fc.oneof(fc.constant(SDP), ngReplyValue) }, { requiredKeys: [] })),
        )
        .map(([body, result, fields]) => ({ ...body, ...fields, ...(result === undefined ? {} : { result }) })),
      async (method, body) => {
        script = (cookie) => [encodeNgMessage(cookie, body)];
        try {
          const value = await CALLS[method]!(c);
          resolved++;
          JSON.stringify(value);
          if (method === 'list') {
            // Call-IDs are text (a number is read as its digits); anything else in the list is no call to name.
            const calls = Array.isArray(body.calls) ? body.calls : [];
            assert.deepEqual(value, calls.filter((v) => typeof v === 'string' || typeof v === 'number').map(String));
          }
        } catch (err) {
          assert.ok(err instanceof NgError || err instanceof NgProtocolError, `${method}: ${String(err)}`);
        }
      },
    ),
    1000,
  );
  assert.ok(resolved > 150, `only ${resolved} replies accepted: the arbitrary rarely reaches the readers`);
});
