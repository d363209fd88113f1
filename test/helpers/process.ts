/** Processes the tests start or look for, by PID. */
import { readdirSync, readFileSync } from 'node:fs';

/** Running, not a zombie: a daemon whose parent died is reaped by init some time after it exited. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits (bounded) until `pid` has gone: a SIGKILL is delivered asynchronously. */
export async function gone(pid: number, withinMs = 3000): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (alive(pid)) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Whether this process may make a thread real-time: CAP_SYS_NICE (bit 23) in its effective capabilities. Root
 * usually has it; a container's root may not, and then SCHED_FIFO is refused with EPERM.
 */
export function mayUseRealtime(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & (1n << 23n)) !== 0n;
}

/** The running children of `parent` (from /proc: no pgrep), with their program name and command line. */
export function childProcesses(parent: number): { pid: number; comm: string; args: string[] }[] {
  const out: { pid: number; comm: string; args: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      // After "pid (comm) ": state, then ppid.
      if (Number(fields[1]) !== parent || fields[0] === 'Z') continue;
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      out.push({ pid: Number(entry), comm, args: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((a) => a !== '') });
    } catch {
      // Exited while being read.
    }
  }
  return out;
}
