/**
 * "Did you mean ...?" for anything a user names: flags, commands, SLO metrics. Pure, and apart from cli.ts so that
 * pure modules (src/capacity/slo.ts) can use it without pulling in the command line.
 */

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? Math.max(a.length, b.length);
}

/** The known name closest to a typo: same letters ignoring dashes and case, a unique prefix, or 1-2 edits away. */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const t = norm(typed);
  if (t === '') return undefined;
  const same = known.find((name) => norm(name) === t);
  if (same !== undefined) return same;
  const prefixed = known.filter((name) => norm(name).startsWith(t));
  if (t.length >= 3 && prefixed.length === 1) return prefixed[0];
  const limit = t.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of known) {
    const d = levenshtein(t, norm(name));
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

