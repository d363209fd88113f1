/**
 * A loss burst on the media path, only where rtp-bench owns it: the firewall of the client network namespace of
 * its own local mesh (--mesh local), where the run itself executes. One iptables rule drops each RTP/RTCP packet
 * arriving for the clients with the given probability (the statistic match): every packet of every direction ends
 * at a client, so each direction loses that share, and on the way in, where no sender learns of it (a DROP on the
 * way out makes the sender's own send fail, which rtp-bench would count as its own drop). Removing the rule ends
 * the burst. Never in the machine's own namespace.
 */
import { statSync } from 'node:fs';
import { run, runPrefix } from '../stack/netns.js';
import type { PortRange } from '../run-plan.js';

const IPTABLES = 'iptables';

/**
 * Why this process must not touch the firewall it sees, or null when it runs in the client namespace of this run's
 * own local mesh: `rtpb-<run>-client` (src/stack/netns.ts names them), the same namespace as this process's.
 */
export function notOwnNamespace(runId: string): string | null {
  const name = `${runPrefix(runId)}-client`;
  try {
    const mine = statSync('/proc/self/ns/net');
    const client = statSync(`/run/netns/${name}`);
    if (mine.ino === client.ino && mine.dev === client.dev) return null;
    return `this run is not in its local mesh's client namespace ${name}: the firewall it sees is not rtp-bench's to change`;
  } catch (err) {
    return `this run has no local mesh client namespace ${name} to drop packets in (${(err as Error).message}): loss needs --mesh local`;
  }
}

/** The rule: UDP to the clients' media ports, dropped with probability percent/100. */
export function lossRule(ports: PortRange, percent: number, comment: string): string[] {
  return [
    'INPUT', '-p', 'udp', '--dport', `${ports.min}:${ports.max}`,
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
