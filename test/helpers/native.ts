/** What the native transport tests share: whether an engine can run here, and how a batch entry is written. */
import { Transport as BaseTransport, nativeTransportError, type TransportEngine } from '../../workers/native/transport.js';

const unavailable = nativeTransportError();

/** A reason to skip the engine's tests here (addon not built, io_uring blocked), or false when it runs. */
export function engineSkip(engine: TransportEngine): string | false {
  if (unavailable) return `native transport not built: ${unavailable.message}`;
  try {
    new BaseTransport({ engine }).destroy();
    return false;
  } catch (err) {
    return `${engine} unavailable here: ${(err as Error).message}`;
  }
}

/** Batch entry k: send `length` bytes at `offset` of the send arena on `handle`. */
export function queue(t: BaseTransport, k: number, handle: number, offset: number, length: number): void {
  t.batch[3 * k] = handle;
  t.batch[3 * k + 1] = offset;
  t.batch[3 * k + 2] = length;
}
