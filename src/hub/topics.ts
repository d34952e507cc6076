/**
 * Topics and selectors.
 *
 * A topic is a `/`-separated path such as `orders/42/items`. A selector names
 * topics: an exact topic, `*` for exactly one segment (`orders/*` matches
 * `orders/1`, not `orders/1/items`), `**` as the last segment for one or more
 * trailing segments (`orders/**` matches both).
 */

import { HeraldError } from '../errors.js';
import type { TopicFilter } from '../log/event-log.js';

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
  const pattern = selector.segments;
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i];
    if (part === '**') return topic.length > i;
    if (i >= topic.length) return false;
    if (part !== '*' && part !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

/**
 * What a log may filter on for these selectors: exact topics, and the
 * literal prefix before a selector's first wildcard. `undefined` (read
 * everything) for no selectors, or a selector that starts with a wildcard.
 * The filter may pass more than the selectors match (`orders/*` passes
 * `orders/1/items`), never less: the hub checks every event again.
 */
export function sourceFilterOf(selectors: readonly Selector[]): TopicFilter | undefined {
  if (selectors.length === 0) return undefined;
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const { source, segments } of selectors) {
    const wildcard = segments.findIndex((segment) => segment === '*' || segment === '**');
    if (wildcard === -1) exact.push(source);
    else if (wildcard === 0) return undefined;
    else prefixes.push(`${segments.slice(0, wildcard).join('/')}/`);
  }
  return { exact, prefixes };
}

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  /** Members whose selector ends exactly at this node. */
  readonly here: Set<T>;
  /** Members whose selector ends with `**` after this node. */
  readonly below: Set<T>;
}

function newNode<T>(): TrieNode<T> {
  return { children: new Map(), here: new Set(), below: new Set() };
}

/**
 * Finds the members whose selectors match a topic without scanning every
 * member: a trie over selector segments, where `*` is one more child key.
 * Cost per lookup grows with the topic's depth and the wildcards on its path,
 * not with the number of members.
 */
export class SelectorIndex<T> {
  private readonly root: TrieNode<T> = newNode();

  add(selector: Selector, member: T): void {
    let node = this.root;
    for (const segment of selector.segments) {
      if (segment === '**') {
        node.below.add(member);
        return;
      }
      let child = node.children.get(segment);
      if (child === undefined) {
        child = newNode();
        node.children.set(segment, child);
      }
      node = child;
    }
    node.here.add(member);
  }

  delete(selector: Selector, member: T): void {
    const path: TrieNode<T>[] = [this.root];
    let node = this.root;
    for (const segment of selector.segments) {
      if (segment === '**') {
        node.below.delete(member);
        break;
      }
      const child = node.children.get(segment);
      if (child === undefined) return;
      node = child;
      path.push(node);
    }
    if (selector.segments.at(-1) !== '**') node.here.delete(member);
    // Prune empty branches so churn of unique topics does not leak nodes.
    for (let i = path.length - 1; i > 0; i--) {
      const current = path[i]!;
      if (current.children.size > 0 || current.here.size > 0 || current.below.size > 0) break;
      path[i - 1]!.children.delete(selector.segments[i - 1]!);
    }
  }

  /** Calls `visit` for each member matching the topic; a member matched by several selectors is visited once per selector. */
  forEachMatch(topic: readonly string[], visit: (member: T) => void): void {
    this.walk(this.root, topic, 0, visit);
  }

  private walk(node: TrieNode<T>, topic: readonly string[], depth: number, visit: (member: T) => void): void {
    if (depth < topic.length) {
      for (const member of node.below) visit(member);
      const segment = topic[depth]!;
      const exact = node.children.get(segment);
      if (exact !== undefined) this.walk(exact, topic, depth + 1, visit);
      const star = node.children.get('*');
      if (star !== undefined) this.walk(star, topic, depth + 1, visit);
    } else {
      for (const member of node.here) visit(member);
    }
  }
}
