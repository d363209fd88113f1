/**
 * What the property-based tests in test/fuzz share: one way to run a fast-check property inside a node:test test
 * (the case count and seed go out as a diagnostic, a failure comes back with fast-check's replayable report), a
 * byte-read counter that proves a parser's work is bounded by its input, and the mutations every packet parser is
 * fed (truncation, bit flips, length and count fields forced large).
 */
import fc from 'fast-check';
import type { TestContext } from 'node:test';

/**
 * A ceiling on a whole property's run, many times what it normally takes (the suite's properties take 0.1-3 s each
 * here). Not a timing assertion on any case: a parser that goes superlinear on the long-input arbitraries (a
 * backtracking regular expression, a rescan per element) cannot finish its runs under it, and the property fails
 * instead of the suite crawling. A case that never returns cannot be interrupted at all (the parsers are synchronous);
 * the read counters below and the structure of each decoder are what rule that out.
 */
const PROPERTY_BUDGET_MS = 60_000;

/** FUZZ_SEED=<n> replays a run (its seed is in each test's diagnostics); otherwise every run explores anew. */
function seed(): number | undefined {
  const s = process.env.FUZZ_SEED;
  return s === undefined || s === '' ? undefined : Number(s);
}

function report<Ts>(t: TestContext, what: string, details: fc.RunDetails<Ts>): void {
  // The "fuzzing counts" a closing note quotes: cases run, and the seed that replays them.
  t.diagnostic(`fuzzing: ${what}: ${details.numRuns} cases (seed ${details.seed})`);
  if (!details.failed) return;
  // The report names the seed, the shrunk counterexample and the path to replay it; the error says what broke.
  const cause = details.errorInstance instanceof Error ? `\n${details.errorInstance.message}` : '';
  throw new Error(`${fc.defaultReportMessage(details) ?? `property ${what} failed`}${cause}`, { cause: details.errorInstance });
}

/** Runs a synchronous property `numRuns` times and reports the count. */
export function checkProperty<Ts>(t: TestContext, what: string, property: fc.IProperty<Ts>, numRuns: number): void {
  const details = fc.check(property, {
    numRuns,
    seed: seed(),
    plugins: [fc.interruptAfterTimeLimit(PROPERTY_BUDGET_MS, { failOnInterrupt: true })],
  });
  report(t, what, details);
}

/** checkProperty for an asynchronous property (one over real sockets). */
export async function checkAsyncProperty<Ts>(t: TestContext, what: string, property: fc.IAsyncProperty<Ts>, numRuns: number): Promise<void> {
  const details = await fc.check(property, {
    numRuns,
    seed: seed(),
    plugins: [fc.interruptAfterTimeLimit(PROPERTY_BUDGET_MS, { failOnInterrupt: true })],
  });
  report(t, what, details);
}

/** Which byte indexes a parser read from a buffer, through countingView(). */
export interface ReadLog {
  reads: number;
  /** The highest index read, -1 before any. */
  maxIndex: number;
}

/**
 * A view of `bytes` that logs every indexed read, so a property can say how much a parser read and how far: work in
 * proportion to the input (no rescans, no loop that does not advance), and nothing read beyond the datagram's
 * length (in a receive arena the bytes after it are another datagram's). Methods run on the real array (subarray,
 * TextDecoder), so what they touch is not logged: the parsers here only use them to hand out views.
 */
export function countingView(bytes: Uint8Array): { view: Uint8Array; log: ReadLog } {
  const log: ReadLog = { reads: 0, maxIndex: -1 };
  const view = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^(0|[1-9][0-9]*)$/.test(key)) {
        log.reads++;
        const i = Number(key);
        if (i > log.maxIndex) log.maxIndex = i;
        return target[i];
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { view, log };
}

/** A 16-bit or 8-bit field forced to a value a length or count field should never carry. */
const LARGE_BYTES = [0xff, 0x7f, 0x80, 0xfe, 0x10, 0x1f] as const;

/**
 * Mutations of a valid packet: cut short at any length, 1-4 bits flipped, one byte forced large (where a count or a
 * length sits, or anywhere), a run of bytes overwritten with 0xff, or bytes appended. `lengthFields`: byte offsets
 * of the packet's length and count fields, which get most of the forcing.
 */
export function mutated(validPackets: fc.Arbitrary<Uint8Array>, lengthFields: (packet: Uint8Array) => number[] = () => []): fc.Arbitrary<Uint8Array> {
  // Plain copies: a Buffer's slice() is a view, and a mutation must never reach a value fast-check may shrink from.
  const valid = validPackets.map((p) => Uint8Array.from(p));
  return fc.oneof(
    valid.chain((p) => fc.nat({ max: p.length }).map((n) => p.slice(0, n))),
    valid.chain((p) =>
      fc.array(fc.tuple(fc.nat({ max: Math.max(0, p.length - 1) }), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
        const b = p.slice();
        for (const [at, bit] of flips) if (at < b.length) b[at] = b[at]! ^ (1 << bit);
        return b;
      }),
    ),
    valid.chain((p) => {
      const fields = lengthFields(p).filter((at) => at < p.length);
      const where = fields.length > 0 ? fc.oneof(fc.constantFrom(...fields), fc.nat({ max: Math.max(0, p.length - 1) })) : fc.nat({ max: Math.max(0, p.length - 1) });
      return fc.tuple(where, fc.constantFrom(...LARGE_BYTES)).map(([at, v]) => {
        const b = p.slice();
        if (at < b.length) b[at] = v;
        return b;
      });
    }),
    valid.chain((p) =>
      fc.tuple(fc.nat({ max: p.length }), fc.integer({ min: 1, max: 8 })).map(([at, n]) => {
        const b = p.slice();
        b.fill(0xff, at, Math.min(b.length, at + n));
        return b;
      }),
    ),
    fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([p, tail]) => {
      const b = new Uint8Array(p.length + tail.length);
      b.set(p);
      b.set(tail, p.length);
      return b;
    }),
  );
}
