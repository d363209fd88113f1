/** Network namespaces as the tests look at them (they run as root). */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** A run id of its own for each test, so that its namespaces (rtpb-<id>-*) are its alone. */
export function newRunId(): string {
  return `test-${randomBytes(3).toString('hex')}`;
}

/** The root namespace as `ip` shows it, minus what changes by itself (address lifetimes). */
export function rootSnapshot(): { link: string; addr: string; route: string } {
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
  return {
    link: ip('-o', 'link'),
    addr: ip('-o', 'addr').replace(/valid_lft \S+ preferred_lft \S+/g, ''),
    route: ip('route', 'show', 'table', 'all'),
  };
}

/** The named network namespace `pid` runs in ('' when it is in none with a name, e.g. the root namespace). */
export function namespaceOf(pid: number): string {
  return execFileSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8' }).trim();
}
