import bencode from 'bencode';

/** A value in an ng message. Byte strings are read as UTF-8 text: every string rtpengine sends is text (SDP, tags, reasons). */
export type NgValue = string | number | NgValue[] | NgDict;
export interface NgDict {
  [key: string]: NgValue;
}

/** A datagram on the ng port that is not `<cookie> <bencoded dictionary>`. */
export class NgProtocolError extends Error {
  override readonly name = 'NgProtocolError';
}

const SPACE = 0x20;
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const MINUS = 0x2d;
const DICT = 0x64; // d
const LIST = 0x6c; // l
const INT = 0x69; // i
const END = 0x65; // e

/** Deeper nesting than rtpengine ever produces; the limit keeps a hostile datagram from exhausting the stack. */
const MAX_DEPTH = 64;

/** `<cookie> <bencode>`: what rtpengine expects on its ng port, one message per UDP datagram. */
export function encodeNgMessage(cookie: string, body: NgDict): Buffer {
  if (cookie.length === 0 || /\s/.test(cookie)) {
    throw new NgProtocolError(`ng cookie ${JSON.stringify(cookie)} must be non-empty and contain no whitespace`);
  }
  checkIntegers(body, 'body');
  const encoded = bencode.encode(body);
  const out = Buffer.allocUnsafe(Buffer.byteLength(cookie) + 1 + encoded.length);
  const at = out.write(cookie, 0, 'utf8');
  out[at] = SPACE;
  out.set(encoded, at + 1);
  return out;
}

/** Bencode has integers only; the bencode package would truncate 20.5 to 20 with a console warning. */
function checkIntegers(value: NgValue, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new NgProtocolError(`ng parameter ${path} = ${value}: bencode carries whole numbers only`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkIntegers(v, `${path}[${i}]`));
  } else if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkIntegers(v, `${path}.${k}`);
  }
}

/**
 * Splits a datagram into cookie and body. The body must be one complete bencoded dictionary with nothing after it.
 *
 * The bencode package's decoder is not used here: bencode@4.0.1 loops forever on a negative string length
 * (`d-3:`), silently truncates floats and over-long strings, and crashes on dictionaries when asked for text.
 * A stray datagram must never hang the client, so this is a small strict decoder that yields NgValue directly.
 */
export function decodeNgMessage(datagram: Uint8Array): { cookie: string; body: NgDict } {
  const bytes = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const space = bytes.indexOf(SPACE);
  if (space < 0) throw new NgProtocolError('ng message has no space: expected "<cookie> <bencoded dictionary>"');
  if (space === 0) throw new NgProtocolError('ng message has an empty cookie: expected "<cookie> <bencoded dictionary>"');
  const cookie = bytes.toString('utf8', 0, space);
  if (space + 1 >= bytes.length) throw new NgProtocolError(`ng message ${cookie} has no body after the cookie`);
  if (bytes[space + 1] !== DICT) {
    throw new NgProtocolError(`ng message ${cookie}: the body is not a bencoded dictionary (it starts with ${describeByte(bytes, space + 1)})`);
  }
  const reader = new Reader(bytes, space + 1, cookie);
  const body = reader.value(0);
  if (reader.pos !== bytes.length) {
    throw new NgProtocolError(`ng message ${cookie}: ${bytes.length - reader.pos} unexpected bytes after the bencoded dictionary`);
  }
  return { cookie, body: body as NgDict };
}

function describeByte(bytes: Buffer, at: number): string {
  const b = bytes[at];
  if (b === undefined) return 'nothing';
  return b >= 0x21 && b <= 0x7e ? `"${String.fromCharCode(b)}"` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

class Reader {
  pos: number;

  constructor(
    private readonly bytes: Buffer,
    start: number,
    private readonly cookie: string,
  ) {
    this.pos = start;
  }

  value(depth: number): NgValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const b = this.bytes[this.pos];
    if (b === undefined) this.truncated();
    if (b === DICT) return this.dict(depth);
    if (b === LIST) return this.list(depth);
    if (b === INT) return this.integer();
    if (b >= DIGIT_0 && b <= DIGIT_9) return this.string();
    this.fail(`unexpected ${describeByte(this.bytes, this.pos)} at byte ${this.pos}`);
  }

  private dict(depth: number): NgDict {
    this.pos++;
    const out: NgDict = {};
    for (;;) {
      const b = this.bytes[this.pos];
      if (b === undefined) this.truncated();
      if (b === END) {
        this.pos++;
        return out;
      }
      if (b < DIGIT_0 || b > DIGIT_9) this.fail(`dictionary key at byte ${this.pos} is not a string`);
      const key = this.string();
      const value = this.value(depth + 1);
      // A key named __proto__ would otherwise replace the object's prototype instead of becoming a property.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }

  private list(depth: number): NgValue[] {
    this.pos++;
    const out: NgValue[] = [];
    for (;;) {
      const b = this.bytes[this.pos];
      if (b === undefined) this.truncated();
      if (b === END) {
        this.pos++;
        return out;
      }
      out.push(this.value(depth + 1));
    }
  }

  private integer(): number {
    const start = ++this.pos;
    const end = this.bytes.indexOf(END, start);
    if (end < 0) this.truncated();
    const text = this.bytes.toString('latin1', start, end);
    if (!/^(0|-?[1-9][0-9]*)$/.test(text)) this.fail(`invalid integer "i${text}e" at byte ${start - 1}`);
    const n = Number(text);
    if (!Number.isSafeInteger(n)) this.fail(`integer ${text} at byte ${start - 1} is too large to represent exactly`);
    this.pos = end + 1;
    return n;
  }

  private string(): string {
    const start = this.pos;
    const colon = this.bytes.indexOf(COLON, start);
    if (colon < 0) this.truncated();
    const lengthText = this.bytes.toString('latin1', start, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(lengthText)) this.fail(`invalid string length "${lengthText}" at byte ${start}`);
    const length = Number(lengthText);
    const end = colon + 1 + length;
    if (end > this.bytes.length) this.truncated();
    this.pos = end;
    return this.bytes.toString('utf8', colon + 1, end);
  }

  private truncated(): never {
    throw new NgProtocolError(`ng message ${this.cookie} is truncated: the bencoded dictionary ends early`);
  }

  private fail(what: string): never {
    throw new NgProtocolError(`ng message ${this.cookie} is not valid bencode: ${what}`);
  }
}
