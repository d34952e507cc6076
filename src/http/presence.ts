/**
 * `GET /presence[?topic=…]`: who is subscribed right now, on every node of
 * the hub: each open stream (Herald's `/events` and Mercure's), or with
 * `topic`, those whose selectors would deliver an event on that topic.
 * The answer names clients' subjects and nodes, so it is an operator's
 * view: a token that may subscribe to `**` when tokens are configured,
 * else this machine only (as the dashboard).
 */

import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { recordMatches, type PresenceRecord } from '../presence/presence.js';
import { isLoopbackClient, type AccessPolicy } from './access.js';
import type { HeaderFields, HttpExchange } from './exchange.js';
import { respondJson } from './respond.js';

/** One stream as `/presence` shows it. */
export interface PresenceEntry {
  readonly subscriber: string;
  /** `herald` (`/events`), `mercure` (draft-08) or `mercure-classic`. */
  readonly protocol: PresenceRecord['protocol'];
  /** The selectors as the client wrote them; empty: every event. */
  readonly selectors: readonly string[];
  readonly subject?: string;
  readonly node: string;
  /** When the stream opened (ISO 8601). */
  readonly since: string;
}

export async function presenceAnswer(hub: Hub, access: AccessPolicy, exchange: HttpExchange, fields: HeaderFields): Promise<void> {
  if (access.subscribersNeedTokens) {
    await access.checkAdmin(exchange, 'GET /presence');
  } else if (!isLoopbackClient(exchange)) {
    throw new HeraldError('HERALD_ERR_FORBIDDEN', 'GET /presence is served to this machine only unless tokens are configured (--jwt-key ...)');
  }
  const topics = exchange.url.searchParams.getAll('topic');
  if (topics.length > 1) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'GET /presence takes at most one topic');
  const [topic] = topics;
  if (topic === '') throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'the topic is empty');
  const records = await hub.presence.list();
  if (exchange.isGone()) return;
  const streams = records
    .filter((record) => topic === undefined || recordMatches(record, topic))
    .sort((a, b) => a.since - b.since || (a.subscriber < b.subscriber ? -1 : 1))
    .map(entryOf);
  const nodes: Record<string, number> = {};
  for (const stream of streams) nodes[stream.node] = (nodes[stream.node] ?? 0) + 1;
  respondJson(exchange, 200, { ...(topic === undefined ? {} : { topic }), count: streams.length, nodes, streams }, { ...fields, 'Cache-Control': 'no-store' });
}

function entryOf(record: PresenceRecord): PresenceEntry {
  return {
    subscriber: record.subscriber,
    protocol: record.protocol,
    selectors: record.selectors.map((selector) => selector.source),
    ...(record.subject === undefined ? {} : { subject: record.subject }),
    node: record.node,
    since: new Date(record.since).toISOString(),
  };
}
