/**
 * The coordinator's end of the fault channel (MediaPool.faultChannel): a failover tells every media thread "what
 * went to X goes to Y now" once, and each thread moves its legs (workers/media-worker.ts) and answers. Nothing per
 * packet: a leg only reconnects its two sockets.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { RepointMessage, RepointedMessage } from '../media/task.js';

export interface RepointOutcome {
  /** Legs moved, over all threads. */
  legs: number;
  /** When the last thread that answered had moved its legs, epoch ms; null when none answered. */
  appliedEpochMs: number | null;
  /** Threads that answered, of those asked. */
  answered: number;
  asked: number;
}

/** A thread that has not answered by then is stuck, or has not loaded: the outcome says how many answered. */
const ANSWER_TIMEOUT_MS = 2000;

export class MediaRepointer {
  private readonly channel: BroadcastChannel;
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: RepointedMessage) => void>();

  constructor(channelName: string) {
    this.channel = new BroadcastChannel(channelName);
    this.channel.unref();
    this.channel.onmessage = (event: unknown) => {
      const message = (event as { data: RepointMessage | RepointedMessage }).data;
      if (message.type === 'repointed') this.waiting.get(message.id)?.(message);
    };
  }

  /** Tells every thread to move legs from `from` to `to`; resolves when all `threads` answered (or the timeout). */
  repoint(from: string, to: string, threads: number): Promise<RepointOutcome> {
    const id = this.nextId++;
    const outcome: RepointOutcome = { legs: 0, appliedEpochMs: null, answered: 0, asked: threads };
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(outcome);
      };
      const timer = setTimeout(done, ANSWER_TIMEOUT_MS);
      this.waiting.set(id, (answer) => {
        outcome.legs += answer.legs;
        outcome.answered++;
        outcome.appliedEpochMs = Math.max(outcome.appliedEpochMs ?? 0, answer.atEpochMs);
        if (outcome.answered >= threads) done();
      });
      const message: RepointMessage = { type: 'repoint', id, from, to };
      this.channel.postMessage(message);
    });
  }

  close(): void {
    this.channel.close();
  }
}
