/**
 * Reading event logs the way the hub does.
 */

import type { EventLog, StoredEvent } from '../../src/index.js';

/** Every retained event after `lastEventId`, read page by page as the hub reads them (small pages, to exercise paging). */
export async function readAfter(
  log: EventLog,
  lastEventId: string,
  pageSize = 7,
): Promise<{ status: 'complete' | 'expired' | 'unknown'; events: StoredEvent[] }> {
  let page = await log.read({ after: { id: lastEventId }, limit: pageSize, maxBytes: 1 << 30 });
  if (page.status === 'unknown') return { status: 'unknown', events: [] };
  const status = page.status;
  const events = [...page.events];
  for (let pages = 0; !page.end; pages++) {
    if (pages > 1_000_000) throw new Error('the log never reached the end of its pages');
    page = await log.read({ after: { cursor: page.cursor }, limit: pageSize, maxBytes: 1 << 30 });
    if (page.status === 'unknown') throw new Error('a continued read came back unknown');
    events.push(...page.events);
  }
  return { status, events };
}
