/**
 * Herald's own topics and selectors, as its API (`/events`, `/trigger`,
 * tokens' `herald` claim) checks them.
 *
 * A topic is a `/`-separated path such as `orders/42/items`. A selector names
 * topics: an exact topic, `*` for exactly one segment (`orders/*` matches
 * `orders/1`, not `orders/1/items`), `**` as the last segment for one or more
 * trailing segments (`orders/**` matches both).
 *
 * The hub itself treats topics as opaque strings: its index of every kind of
 * selector (these, and Mercure's) is `src/topics/`.
 */

import { HeraldError } from '../errors.js';
import { segmentsMatch } from '../topics/herald.js';

export const MAX_TOPIC_LENGTH = 1024;
export const MAX_EVENT_TYPE_LENGTH = 256;

const FORBIDDEN = /[\r\n\0]/;
/** Half of a UTF-16 pair without its other half: not a character, and UTF-8 cannot carry it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Checks a topic an event is published to; returns its segments. */
export function parseTopic(topic: string): string[] {
  const fail = (why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_TOPIC', `topic ${describe(topic)} ${why}`);
  };
  if (topic.length === 0) fail('is empty');
  if (topic.length > MAX_TOPIC_LENGTH) fail(`is longer than ${MAX_TOPIC_LENGTH} characters`);
  if (FORBIDDEN.test(topic)) fail('must not contain CR, LF or NUL');
  if (LONE_SURROGATE.test(topic)) fail('is not well-formed Unicode (a lone surrogate)');
  const segments = topic.split('/');
  if (segments.some((s) => s === '')) fail('has an empty segment (leading, trailing or double "/")');
  if (topic.includes('*')) {
    fail('holds "*"; wildcards belong in subscription selectors, not in published topics');
  }
  return segments;
}

/** Checks an event type (the SSE `event` field). */
export function checkEventType(type: string): void {
  const fail = (why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_EVENT_TYPE', `event type ${describe(type)} ${why}`);
  };
  if (type.length === 0) fail('is empty');
  if (type.length > MAX_EVENT_TYPE_LENGTH) fail(`is longer than ${MAX_EVENT_TYPE_LENGTH} characters`);
  if (FORBIDDEN.test(type)) fail('must not contain CR, LF or NUL');
  if (LONE_SURROGATE.test(type)) fail('is not well-formed Unicode (a lone surrogate)');
}

/** A parsed selector: its segments, with `*` and a final `**` as wildcards. */
export interface Selector {
  readonly source: string;
  readonly segments: readonly string[];
}

export function parseSelector(source: string): Selector {
  const fail = (why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_SELECTOR', `topic selector ${describe(source)} ${why}`);
  };
  if (source.length === 0) fail('is empty');
  if (source.length > MAX_TOPIC_LENGTH) fail(`is longer than ${MAX_TOPIC_LENGTH} characters`);
  if (FORBIDDEN.test(source)) fail('must not contain CR, LF or NUL');
  if (LONE_SURROGATE.test(source)) fail('is not well-formed Unicode (a lone surrogate)');
  const segments = source.split('/');
  segments.forEach((segment, index) => {
    if (segment === '') fail('has an empty segment (leading, trailing or double "/")');
    if (segment === '**' && index !== segments.length - 1) fail('may use "**" only as its last segment');
    if (segment !== '*' && segment !== '**' && segment.includes('*')) {
      fail(`has "*" inside the segment "${segment}"; a wildcard must be a whole segment`);
    }
  });
  return { source, segments };
}

/** Whether `selector` matches the topic given by its segments. */
export function selectorMatches(selector: Selector, topic: readonly string[]): boolean {
  return segmentsMatch(selector.segments, topic);
}
