/**
 * Mercure's active subscriptions (SPEC "Active Subscriptions"): the
 * documents that describe a subscription, the private events the hub
 * publishes when one starts or ends, and the paths of the subscriptions API.
 *
 * One subscription is one selector of one Mercure stream; the stream's
 * presence record (src/presence) holds them all, so the API lists what every
 * node of the hub serves. Each subscription is described in the generation
 * its stream was opened with:
 *
 * | stream | topic of its events and API URL | members |
 * |---|---|---|
 * | classic (`topic=`) | `/.well-known/mercure/subscriptions/{topic}/{subscriber}` | `topic` |
 * | draft-08 (`match…=`) | `/.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber}` | `matchType`, `match` |
 *
 * Variables are percent-encoded once, as RFC 6570 simple expansion does
 * (every character but the unreserved ones), so a `/` or `%` in a selector
 * never splits or re-encodes a path segment.
 */

import { randomUuidUrn } from '../uuid.js';
import { HeraldError } from '../errors.js';
import type { EventDraft } from '../log/event-log.js';
import type { PresenceRecord } from '../presence/presence.js';

export const SUBSCRIPTIONS_PATH = '/.well-known/mercure/subscriptions';
/** The JSON-LD context of every document (SPEC "JSON-LD Context"): fixed, never fetched. */
export const MERCURE_CONTEXT = 'https://mercure.rocks/';

export type MatchType = 'Exact' | 'URLPattern' | 'URITemplate';
const MATCH_TYPES: readonly string[] = ['Exact', 'URLPattern', 'URITemplate'];

/** One subscription as the API and the events show it. */
export interface SubscriptionDocument {
  readonly id: string;
  readonly type: 'Subscription';
  /** Classic streams. */
  readonly topic?: string;
  /** Draft-08 streams. */
  readonly matchType?: MatchType;
  readonly match?: string;
  readonly subscriber: string;
  readonly active: boolean;
  readonly payload?: unknown;
}

/** RFC 6570 simple expansion of one variable: everything but ALPHA, DIGIT and `-._~` percent-encoded, once. */
export function encodeVariable(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The documents of a stream's subscriptions, one per selector (none for a stream that is not Mercure's). */
export function subscriptionsOf(record: PresenceRecord, active = true): SubscriptionDocument[] {
  if (record.protocol === 'herald') return [];
  const subscriber = encodeVariable(record.subscriber);
  const documents = record.selectors.map((selector, index): SubscriptionDocument => {
    const payload = record.payloads?.[index];
    const common = { type: 'Subscription' as const, subscriber: record.subscriber, active, ...(payload === undefined || payload === null ? {} : { payload }) };
    if (record.protocol === 'mercure-classic') {
      return { id: `${SUBSCRIPTIONS_PATH}/${encodeVariable(selector.source)}/${subscriber}`, topic: selector.source, ...common };
    }
    // The type the subscriber asked for (`matchURLPattern=*` is a URLPattern subscription, though it matches as `*`).
    const asked = record.matchTypes?.[index];
    const matchType: MatchType =
      asked !== undefined && asked !== null && MATCH_TYPES.includes(asked) ? (asked as MatchType) : selector.kind === 'url-pattern' ? 'URLPattern' : selector.kind === 'uri-template' ? 'URITemplate' : 'Exact';
    return { id: `${SUBSCRIPTIONS_PATH}/${matchType}/${encodeVariable(selector.source)}/${subscriber}`, matchType, match: selector.source, ...common };
  });
  // The same selector twice in one stream is one subscription (SPEC: ids are unique among active subscriptions).
  const seen = new Set<string>();
  return documents.filter((document) => !seen.has(document.id) && seen.add(document.id) !== undefined);
}

/**
 * The events that tell a stream's subscriptions started (`active: true`) or
 * ended: private, so only tokens allowed on the subscription's topic see
 * them; one batch per stream, so they are stored together and in order.
 */
export function subscriptionEvents(record: PresenceRecord, active: boolean): EventDraft[] {
  return subscriptionsOf(record, active).map((document) => ({
    id: randomUuidUrn(),
    topic: document.id,
    data: JSON.stringify({ '@context': MERCURE_CONTEXT, ...document }),
    private: true,
  }));
}

/** Which subscriptions an API URL names. */
export type SubscriptionsQuery =
  | { readonly kind: 'all' }
  | { readonly kind: 'selector'; readonly matchType: MatchType | undefined; readonly match: string }
  | { readonly kind: 'one'; readonly matchType: MatchType | undefined; readonly match: string; readonly subscriber: string };

function notFound(path: string): HeraldError {
  return new HeraldError('HERALD_ERR_NOT_FOUND', `no subscriptions resource at ${path.slice(0, 200)}; see ${SUBSCRIPTIONS_PATH}, ${SUBSCRIPTIONS_PATH}/{matchType}/{match}[/{subscriber}] or ${SUBSCRIPTIONS_PATH}/{topic}[/{subscriber}]`);
}

/**
 * Reads an API path (already without any base path). A first segment of
 * `Exact`, `URLPattern` or `URITemplate` is a draft-08 matcher type; anything else is a
 * classic topic (a classic topic spelled exactly `Exact` is not addressable,
 * as SPEC-08 leaves `*` unaddressable).
 * @throws HeraldError `HERALD_ERR_NOT_FOUND` for a path of no resource, `HERALD_ERR_BAD_REQUEST` for bad percent-encoding
 */
export function parseSubscriptionsPath(path: string): SubscriptionsQuery {
  // Only the canonical collection URL: `…/subscriptions/` would be authorized as another topic (`{/topic}` empty).
  if (path === SUBSCRIPTIONS_PATH) return { kind: 'all' };
  if (!path.startsWith(`${SUBSCRIPTIONS_PATH}/`)) throw notFound(path);
  const raw = path.slice(SUBSCRIPTIONS_PATH.length + 1).split('/');
  let segments: string[];
  try {
    segments = raw.map((segment) => decodeURIComponent(segment));
  } catch {
    throw new HeraldError('HERALD_ERR_BAD_REQUEST', `the path ${JSON.stringify(path.slice(0, 200))} is not well percent-encoded`);
  }
  if (segments.some((segment) => segment === '')) throw notFound(path);
  const typed = MATCH_TYPES.includes(raw[0]!);
  const matchType = typed ? (raw[0] as MatchType) : undefined;
  const rest = typed ? segments.slice(1) : segments;
  if (rest.length === 1) return { kind: 'selector', matchType, match: rest[0]! };
  if (rest.length === 2) return { kind: 'one', matchType, match: rest[0]!, subscriber: rest[1]! };
  throw notFound(path);
}

/** Whether a document is one the query names. */
export function documentMatches(query: SubscriptionsQuery, document: SubscriptionDocument): boolean {
  if (query.kind === 'all') return true;
  const sameSelector = query.matchType === undefined ? document.topic === query.match : document.matchType === query.matchType && document.match === query.match;
  return sameSelector && (query.kind === 'selector' || document.subscriber === query.subscriber);
}

/**
 * The API's answer for a query: a collection (`Subscriptions`), or one
 * subscription; `undefined` when the one named is not active anywhere (the
 * caller answers 404).
 *
 * @param path the URL path asked for, the collection's `id`
 * @param lastEventId the newest event when the records were read, else `earliest` (SPEC)
 */
export function subscriptionsDocument(
  query: SubscriptionsQuery,
  path: string,
  records: readonly PresenceRecord[],
  lastEventId: string,
): Record<string, unknown> | undefined {
  const documents = records.flatMap((record) => subscriptionsOf(record)).filter((document) => documentMatches(query, document));
  if (query.kind === 'one') {
    const [found] = documents;
    return found === undefined ? undefined : { '@context': MERCURE_CONTEXT, ...found, lastEventID: lastEventId };
  }
  documents.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { '@context': MERCURE_CONTEXT, id: path, type: 'Subscriptions', lastEventID: lastEventId, subscriptions: documents };
}
