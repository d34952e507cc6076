/**
 * What a verified token allows: the `herald` claim turned into topic rights.
 *
 * The claim is `{"herald": {"publish": [...], "subscribe": [...]}}`, each list
 * holding topic selectors in the syntax of `GET /events?topic=`. A missing
 * list grants nothing for that role.
 *
 * Events without a topic reach every subscriber without selectors, so they
 * are "everything" rights: publishing one, or receiving one, needs the
 * selector `**` itself in the matching list. `orders/**` is not enough.
 */

import { forbiddenError } from './challenge.js';
import { parseSelector, parseTopic, selectorMatches, type Selector } from '../hub/topics.js';

/** The rights a verified token carries. Frozen. */
export interface Grant {
  /** Selectors of the topics the holder may publish to. */
  readonly publish: readonly string[];
  /** Selectors of the topics the holder may receive. */
  readonly subscribe: readonly string[];
  /** The token's `exp` in ms since the epoch; `undefined` when the token never expires. */
  readonly expiresAt: number | undefined;
  /** The token's `sub`, for logs; absent when the token has none. */
  readonly subject?: string;
}

interface ParsedGrant {
  readonly publish: readonly Selector[];
  readonly subscribe: readonly Selector[];
}

// Grants are checked once per published event and per delivered event, so
// their selectors are parsed once and remembered for as long as the grant lives.
const parsedGrants = new WeakMap<Grant, ParsedGrant>();

function parsed(grant: Grant): ParsedGrant {
  let known = parsedGrants.get(grant);
  if (known === undefined) {
    known = Object.freeze({
      publish: Object.freeze(grant.publish.map(parseSelector)),
      subscribe: Object.freeze(grant.subscribe.map(parseSelector)),
    });
    parsedGrants.set(grant, known);
  }
  return known;
}

/**
 * Builds a frozen grant whose selectors are already checked.
 *
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` when a selector is malformed
 */
export function createGrant(rights: {
  publish?: readonly string[];
  subscribe?: readonly string[];
  expiresAt?: number | undefined;
  subject?: string | undefined;
}): Grant {
  const publish = Object.freeze([...(rights.publish ?? [])]);
  const subscribe = Object.freeze([...(rights.subscribe ?? [])]);
  const grant: Grant = Object.freeze({
    publish,
    subscribe,
    expiresAt: rights.expiresAt,
    ...(rights.subject === undefined ? {} : { subject: rights.subject }),
  });
  parsed(grant);
  return grant;
}

function isEverything(selector: Selector): boolean {
  return selector.segments.length === 1 && selector.segments[0] === '**';
}

function allows(selectors: readonly Selector[], topic: string | undefined): boolean {
  if (topic === undefined) return selectors.some(isEverything);
  const segments = parseTopic(topic);
  return selectors.some((selector) => selectorMatches(selector, segments));
}

/**
 * Whether the grant allows publishing an event to `topic`.
 *
 * @param topic the event's topic; `undefined` for an event without one, which needs the selector `**`
 * @throws HeraldError `HERALD_ERR_INVALID_TOPIC` when `topic` is malformed: the answer the publish would get anyway
 * @example
 * mayPublish(grant, 'orders/42'); // true for publish: ['orders/*']
 */
export function mayPublish(grant: Grant, topic: string | undefined): boolean {
  return allows(parsed(grant).publish, topic);
}

/**
 * Like {@link mayPublish}, but throws the 403 to answer with.
 *
 * @throws HeraldError `HERALD_ERR_FORBIDDEN` naming the topic
 */
export function assertMayPublish(grant: Grant, topic: string | undefined): void {
  if (mayPublish(grant, topic)) return;
  throw forbiddenError(
    topic === undefined
      ? 'the token may not publish events without a topic (that needs the publish selector "**")'
      : `the token may not publish to topic ${JSON.stringify(topic)}`,
  );
}

/**
 * The selectors of the topics a subscriber holding `grant` may receive. A
 * stream delivers an event only when one of these matches its topic (and,
 * for an event without a topic, only when one of them is `**`).
 */
export function subscriptionScope(grant: Grant): readonly Selector[] {
  return parsed(grant).subscribe;
}

/**
 * Whether the grant allows receiving an event on `topic`.
 *
 * @param topic the event's topic; `undefined` for an event without one, which needs the selector `**`
 * @throws HeraldError `HERALD_ERR_INVALID_TOPIC` when `topic` is malformed
 */
export function mayReceive(grant: Grant, topic: string | undefined): boolean {
  return allows(parsed(grant).subscribe, topic);
}

/**
 * Whether some topic is matched by both selectors. A subscription selector
 * that overlaps no selector of the token's scope can never deliver anything,
 * which deserves a 403 rather than a silent, empty stream.
 *
 * @example
 * selectorsOverlap(parseSelector('orders/**'), parseSelector('orders/42')); // true
 * selectorsOverlap(parseSelector('orders/*'), parseSelector('users/**')); // false
 */
export function selectorsOverlap(a: Selector, b: Selector): boolean {
  const x = a.segments;
  const y = b.segments;
  for (let i = 0; ; i++) {
    // `**` takes one or more trailing segments, so it accepts whatever the
    // other selector still requires, provided it requires at least one.
    if (x[i] === '**') return i < y.length;
    if (y[i] === '**') return i < x.length;
    if (i === x.length || i === y.length) return x.length === y.length;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
}
