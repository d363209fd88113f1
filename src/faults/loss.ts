/**
 * A loss burst on the media path, only where rtp-bench owns it: the firewall of the client network namespace of
 * its own local mesh (--mesh local), where the run itself executes. One iptables rule drops each RTP/RTCP packet the
 * clients send with the given probability (the statistic match), so every direction of every call loses that share
 * of its packets; removing the rule ends the burst. Never in the machine's own namespace.
 */
import { readlinkSync } from 'node:fs';
import { run } from '../stack/netns.js';
import type { PortRange } from '../run-plan.js';

const IPTABLES = 'iptables';

/** Why this process must not touch the firewall it sees, or null when it is in a network namespace of its own. */
export function notOwnNamespace(): string | null {
  try {
    // The same network namespace as PID 1 is the machine's own: not rtp-bench's to change.
    if (readlinkSync('/proc/self/ns/net') === readlinkSync('/proc/1/ns/net')) {
      return "this run is in the machine's own network namespace, not the local mesh's client namespace: its firewall is not rtp-bench's to change";
    }
    return null;
  } catch (err) {
    return `cannot tell which network namespace this run is in: ${(err as Error).message}`;
  }
}

/** The rule: UDP from the clients' media ports, dropped with probability percent/100. */
export function lossRule(ports: PortRange, percent: number, comment: string): string[] {
  return [
    'OUTPUT', '-p', 'udp', '--sport', `${ports.min}:${ports.max}`,
    '-m', 'statistic', '--mode', 'random', '--probability', (percent / 100).toFixed(6),
    '-m', 'comment', '--comment', comment,
    '-j', 'DROP',
  ];
}

async function iptables(args: string[]): Promise<void> {
  const r = await run(IPTABLES, ['-w', ...args]);
  if (r.code !== 0) throw new Error(`iptables ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}

export async function addLoss(rule: string[]): Promise<void> {
  await iptables(['-I', ...rule]);
}

export async function removeLoss(rule: string[]): Promise<void> {
  await iptables(['-D', ...rule]);
}
