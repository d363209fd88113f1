/**
 * The live progress line on stderr: one line rewritten in place on a terminal, nothing when stderr is a file or
 * pipe (unless --progress on, which prints a plain line every 5 s instead, for CI logs).
 */
export interface ProgressSnapshot {
  elapsedMs: number;
  totalMs: number;
  /** Calls that have arrived so far. */
  started: number;
  /** Calls whose media is running now. */
  live: number;
  ok: number;
  failed: number;
  /** Cumulative RTP packets sent / received (unique) and lost (RFC 3550, live streams included). */
  sent: number;
  received: number;
  lost: number;
  latenessMaxMs: number;
  stopping: boolean;
}

import { performance } from 'node:perf_hooks';
import { ControlView, P_LATENESS_MAX_MS, P_LIVE_CALLS, P_LOST_A3, P_RECEIVED, P_SENT } from '../media/control.js';

const PLAIN_EVERY_MS = 5000;

export class Progress {
  private readonly mode: 'tty' | 'plain' | 'off';
  private last: ProgressSnapshot | null = null;
  private lastPlainMs = -Infinity;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream, setting: 'auto' | 'on' | 'off', private readonly target: number) {
    if (setting === 'off') this.mode = 'off';
    else if (stream.isTTY) this.mode = 'tty';
    else this.mode = setting === 'on' ? 'plain' : 'off';
  }

  update(s: ProgressSnapshot): void {
    const previous = this.last;
    this.last = s;
    if (this.mode === 'off') return;
    const line = formatProgress(s, previous, this.target);
    if (this.mode === 'tty') {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (s.elapsedMs - this.lastPlainMs >= PLAIN_EVERY_MS) {
      this.lastPlainMs = s.elapsedMs;
      this.stream.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** Pure, so it can be tested: rates come from the difference with the previous snapshot. */
export function formatProgress(s: ProgressSnapshot, previous: ProgressSnapshot | null, target: number): string {
  const dt = previous ? (s.elapsedMs - previous.elapsedMs) / 1000 : 0;
  const txRate = previous && dt > 0 ? (s.sent - previous.sent) / dt : 0;
  const rxRate = previous && dt > 0 ? (s.received - previous.received) / dt : 0;
  const expected = s.received + s.lost;
  const loss = expected > 0 ? (s.lost * 100) / expected : 0;
  const t = `${fmtSeconds(s.elapsedMs)}/${fmtSeconds(s.totalMs)}`;
  const parts = [
    s.stopping ? `stopping ${t}` : t,
    `calls up ${s.live}/${target}`,
    `arrived ${s.started}`,
    `ended ok ${s.ok} failed ${s.failed}`,
    `pps tx ${Math.round(txRate)} rx ${Math.round(rxRate)}`,
    `loss ${loss.toFixed(2)}%`,
    `late max ${s.latenessMaxMs.toFixed(1)} ms`,
  ];
  return parts.join(' | ');
}

function fmtSeconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))}s`;
}

/**
 * Updates the progress line once a second from the media threads' live counters and the coordinator's call tally,
 * until the returned stop function is called.
 */
export function watchProgress(progress: Progress, control: ControlView, tally: () => Pick<ProgressSnapshot, 'started' | 'ok' | 'failed' | 'stopping'>, startMs: number, totalMs: number): () => void {
  const timer = setInterval(() => {
    progress.update({
      ...tally(),
      elapsedMs: performance.now() - startMs,
      totalMs,
      live: control.total(P_LIVE_CALLS),
      sent: control.total(P_SENT),
      received: control.total(P_RECEIVED),
      lost: control.total(P_LOST_A3),
      latenessMaxMs: control.total(P_LATENESS_MAX_MS, 'max'),
    });
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    progress.done();
  };
}
