/**
 * What a Mercure subscriber asks for and what a Mercure publisher sends,
 * read from the query and the form, for both generations on one endpoint
 * (see `tokens.ts` for who may do it).
 *
 * - classic: `topic=` selectors (`*`, an RFC 6570 template when it holds `{`,
 *   else an exact string), `lastEventID`;
 * - draft-08: `match=` / `matchExact=` (exact) and `matchURLPattern=`
 *   (WHATWG URL Pattern), as the current text spells them, and
 *   `match_exact=` / `match_urlpattern=` of earlier revisions;
 *   `last_event_id`, and the whole `match` prefix reserved for matcher
 *   types to come.
 *
 * A request holding both kinds gets the union of its selectors and is
 * answered as draft-08 (the newer header names).
 */

import { HeraldError } from '../errors.js';
import type { MercureGeneration, TopicMatcher } from './grant.js';

/** Longest selector, topic or id taken, in bytes: room for long URLs, not for abuse. */
export const MAX_MERCURE_TEXT_BYTES = 4096;
/** Longest publisher-chosen id, in bytes. */
export const MAX_UPDATE_ID_BYTES = 1024;
/** Where the hub's own resources live; publishers may not publish to topics under it (they could forge subscription events). */
export const RESERVED_PATH = '/.well-known/mercure';

/** Each matcher type's parameters: the current text's (`matchExact`, `matchURLPattern`, case-sensitive) and earlier revisions'. */
const EXACT_PARAMETERS = new Set(['match', 'matchExact', 'match_exact']);
const PATTERN_PARAMETERS = new Set(['matchURLPattern', 'match_urlpattern']);
/** RFC 6570 templates by name (the reference hub's optional `URITemplate` type): what a classic `topic=` with a `{` is. */
const TEMPLATE_PARAMETER = 'matchURITemplate';
/**
 * C0 and C1 controls, DEL, and format characters (Unicode `Cf`, e.g. zero
 * width joiners and bidi overrides): text that looks like one topic but is
 * another, or that breaks a line of the wire format.
 */
const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const DIGITS = /^[0-9]+$/;

export interface MercureSubscription {
  /** Which header names the answer uses: `Last-Event-ID` (classic) or `Mercure-Last-Event-ID` (draft-08). */
  readonly generation: MercureGeneration;
  /** One per selector parameter, in query order. */
  readonly matchers: readonly TopicMatcher[];
  /** The matcher type each draft-08 parameter names (`undefined` for a classic `topic=`), in the same order. */
  readonly matchTypes: readonly ('Exact' | 'URLPattern' | 'URITemplate' | undefined)[];
  /** From the `Last-Event-ID` header, else the query (`last_event_id`, `lastEventID`). */
  readonly lastEventId: string | undefined;
}

/** A publication as the form gives it, checked. */
export interface MercureUpdate {
  /** The first is the canonical topic; subscribers of any of them receive the update. */
  readonly topics: readonly [string, ...string[]];
  readonly data: string;
  /** The publisher's id, kept verbatim as the SSE id; absent: the hub makes one. */
  readonly id: string | undefined;
  readonly private: boolean;
  readonly type: string | undefined;
  readonly retry: number | undefined;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** Why a selector, topic, id or type cannot be taken, or `undefined`. */
function textProblem(text: string, maxBytes = MAX_MERCURE_TEXT_BYTES): string | undefined {
  if (utf8Length(text) > maxBytes) return `is longer than ${maxBytes} bytes`;
  if (LONE_SURROGATE.test(text)) return 'is not well-formed Unicode (a lone surrogate)';
  if (CONTROL_OR_FORMAT.test(text)) return 'holds a control or format character';
  return undefined;
}

function selectorError(parameter: string, value: string, why: string): HeraldError {
  return new HeraldError('HERALD_ERR_INVALID_SELECTOR', `the ${parameter} selector ${quote(value)} ${why}`);
}

/**
 * Reads the selectors and the resume point of `GET /.well-known/mercure`.
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` for no selector, an unknown `match*` parameter, a selector with
 *   control characters or over the length limit, or more than `maxSelectors`
 */
export function parseSubscription(query: URLSearchParams, lastEventIdHeader: string | undefined, maxSelectors: number): MercureSubscription {
  const matchers: TopicMatcher[] = [];
  const matchTypes: ('Exact' | 'URLPattern' | 'URITemplate' | undefined)[] = [];
  let classic = false;
  let draft08 = false;
  for (const [name, value] of query) {
    let matcher: TopicMatcher;
    let matchType: 'Exact' | 'URLPattern' | 'URITemplate' | undefined;
    if (name === 'topic') {
      classic = true;
      matcher = { kind: value === '*' ? 'any' : value.includes('{') ? 'uri-template' : 'exact', source: value };
    } else if (name === TEMPLATE_PARAMETER) {
      draft08 = true;
      matcher = { kind: value === '*' ? 'any' : 'uri-template', source: value };
      matchType = 'URITemplate';
    } else if (EXACT_PARAMETERS.has(name) || PATTERN_PARAMETERS.has(name)) {
      draft08 = true;
      matcher = { kind: value === '*' ? 'any' : PATTERN_PARAMETERS.has(name) ? 'url-pattern' : 'exact', source: value };
      matchType = PATTERN_PARAMETERS.has(name) ? 'URLPattern' : 'Exact';
    } else if (name.toLowerCase().startsWith('match')) {
      // The prefix is reserved for matcher types: guessing what an unknown one means could leak updates.
      throw new HeraldError('HERALD_ERR_INVALID_SELECTOR', `unknown matcher parameter ${quote(name)}; use match, matchExact, matchURLPattern, matchURITemplate (or match_exact, match_urlpattern) or topic`);
    } else {
      continue;
    }
    if (value === '') throw selectorError(name, value, 'is empty');
    const problem = textProblem(value);
    if (problem !== undefined) throw selectorError(name, value, problem);
    matchers.push(matcher);
    matchTypes.push(matchType);
  }
  if (matchers.length === 0) {
    throw new HeraldError('HERALD_ERR_INVALID_SELECTOR', 'a subscription needs at least one selector: topic=… (classic) or match=… / matchURLPattern=… (draft-08)');
  }
  if (matchers.length > maxSelectors) {
    throw new HeraldError('HERALD_ERR_INVALID_SELECTOR', `a subscription may name at most ${maxSelectors} selectors (--max-topics); this one names ${matchers.length}`);
  }
  const lastEventId = nonEmpty(lastEventIdHeader) ?? nonEmpty(query.get('last_event_id')) ?? nonEmpty(query.get('lastEventID'));
  return { generation: draft08 || !classic ? 'draft-08' : 'classic', matchers, matchTypes, lastEventId };
}

function nonEmpty(value: string | null | undefined): string | undefined {
  return value === null || value === undefined || value === '' ? undefined : value;
}

function updateError(message: string): HeraldError {
  return new HeraldError('HERALD_ERR_INVALID_UPDATE', message);
}

/**
 * Reads the form of `POST /.well-known/mercure`. Fields it does not know are
 * ignored, as the spec asks (publishers of later versions may send more).
 * @throws HeraldError `HERALD_ERR_INVALID_UPDATE` for a missing or bad topic, a bad id, type or retry;
 *   `HERALD_ERR_FORBIDDEN` for a topic in the hub's reserved namespace
 */
export function parseUpdate(form: URLSearchParams, hubUrl: string): MercureUpdate {
  const topics = form.getAll('topic');
  const [canonical, ...alternates] = topics;
  if (canonical === undefined) throw updateError('an update needs a topic field');
  for (const topic of topics) {
    if (topic === '') throw updateError('a topic field is empty');
    const problem = textProblem(topic);
    if (problem !== undefined) throw updateError(`the topic ${quote(topic)} ${problem}`);
    if (isReserved(topic, hubUrl)) {
      throw new HeraldError('HERALD_ERR_FORBIDDEN', `the topic ${quote(topic)} is under ${RESERVED_PATH}, which only the hub publishes to`);
    }
  }
  const id = form.get('id') ?? undefined;
  if (id !== undefined) {
    if (id === '') throw updateError('the id field is empty; leave it out to let the hub choose one');
    if (id.startsWith('#')) throw updateError(`the id ${quote(id)} begins with "#", which is the hub's own`);
    if (id === 'earliest') throw updateError('the id "earliest" is reserved: it asks for the whole history on reconnection');
    const problem = textProblem(id, MAX_UPDATE_ID_BYTES);
    if (problem !== undefined) throw updateError(`the id ${quote(id)} ${problem}`);
  }
  const type = form.get('type') ?? undefined;
  if (type !== undefined) {
    if (type === '') throw updateError('the type field is empty; leave it out for the default "message"');
    const problem = textProblem(type, 256);
    if (problem !== undefined) throw updateError(`the type ${quote(type)} ${problem}`);
  }
  const retryText = form.get('retry') ?? undefined;
  let retry: number | undefined;
  if (retryText !== undefined) {
    retry = Number(retryText);
    if (!DIGITS.test(retryText) || !Number.isSafeInteger(retry)) throw updateError(`the retry ${quote(retryText)} is not a number of milliseconds (ASCII digits)`);
  }
  return { topics: [canonical, ...alternates], data: form.get('data') ?? '', id, private: form.has('private'), type, retry };
}

const UNRESERVED_ESCAPE = /%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|2E|5F|7E)/gi;

/**
 * Whether a topic names a resource of the hub itself: resolved against the
 * hub's URL, its path is the hub's or below it, however it is spelled
 * (`/a/../.well-known/mercure/x`, `/.well-known/%6Dercure`, any host). A
 * topic that is not a URL reference (a plain name) never is.
 */
export function isReserved(topic: string, hubUrl: string, root: string = RESERVED_PATH): boolean {
  let path: string;
  try {
    path = new URL(topic, hubUrl).pathname;
  } catch {
    return false;
  }
  const decoded = path.replace(UNRESERVED_ESCAPE, (escape) => String.fromCharCode(Number.parseInt(escape.slice(1), 16)));
  // Decoding may have produced dot segments the URL parser did not see: resolve once more.
  const normalised = new URL(decoded, 'http://reserved.invalid').pathname;
  return normalised === root || normalised.startsWith(`${root}/`);
}
