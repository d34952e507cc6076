/**
 * Waits until every promise has settled, or `timeoutMs` has passed, whichever
 * comes first; never rejects. Used by shutdown to let work under way finish
 * without letting a stuck piece hold the process.
 */
export async function settleWithin(promises: Iterable<Promise<unknown>>, timeoutMs: number): Promise<void> {
  const pending = [...promises];
  if (pending.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([Promise.allSettled(pending), timeout]);
  clearTimeout(timer);
}
