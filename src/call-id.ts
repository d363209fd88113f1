/**
 * A call's id: its run's id and its index (`20261207-114019-a258-17`). Kept in this leaf module because more than
 * the call needs to know the form: rtpengine keys a replicated call in Redis by its bare call-id, and the end of a
 * run removes what any of its calls left there (src/stack/redis.ts).
 */
export function callIdOf(runId: string, index: number): string {
  return `${runId}-${index}`;
}

/** Whether `id` is one of run `runId`'s call-ids (not another run's, even one whose id starts with this one's). */
export function isCallIdOf(runId: string, id: string): boolean {
  return id.length > runId.length + 1 && id.startsWith(`${runId}-`) && /^\d+$/.test(id.slice(runId.length + 1));
}
