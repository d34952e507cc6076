/**
 * `POST /trigger`: JSON (one event or an array) or plain text (the body is the data).
 *
 * A publish flows one way, cheapest check first: the media type and the
 * publisher's token from the head, then the client's publish rate, and only
 * then is the body read and parsed; the topics' permissions once they are
 * known. An unauthenticated client never makes the hub read its body.
 */

import { isReserved } from '../mercure/requests.js';
import { MERCURE_PATH } from '../mercure/tokens.js';
import { HeraldError } from '../errors.js';
import type { Hub, Published } from '../hub/hub.js';
import { draftFromText, draftsFromBody } from '../hub/messages.js';
import type { EventDraft } from '../log/event-log.js';
import type { AccessPolicy } from './access.js';
import type { HttpExchange } from './exchange.js';
import type { PublishRateLimiter } from './rate-limit.js';

export interface TriggerLimits {
  readonly maxBody: number;
  readonly bodyTimeout: number;
  readonly rate: PublishRateLimiter;
  /** `--base-path`: the hub URL Mercure resolves relative topics against sits under it. */
  readonly basePath?: string | undefined;
}

type MediaType = 'json' | 'text';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new HeraldError('HERALD_ERR_INVALID_UTF8', 'the body is not valid UTF-8');
  }
}

function mediaType(header: string | undefined): MediaType {
  const text = header ?? '';
  const [type = '', ...params] = text.split(';').map((part) => part.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  const unsupported = (why: string): never => {
    throw new HeraldError('HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', why);
  };
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    unsupported(`charset "${charset}" is not supported; send UTF-8`);
  }
  if (type === 'application/json') return 'json';
  if (type === 'text/plain') return 'text';
  return unsupported(
    text === ''
      ? 'Content-Type is missing; send application/json or text/plain'
      : `Content-Type "${text.slice(0, 100)}" is not supported; send application/json or text/plain`,
  );
}

/** `?private=` of a text publish: `true`/`1` or `false`/`0`. */
function privateFlag(value: string | null): boolean | undefined {
  if (value === null) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new HeraldError('HERALD_ERR_INVALID_EVENT', `?private= takes true or false, not ${JSON.stringify(value.slice(0, 40))}`);
}

interface Parsed {
  readonly drafts: EventDraft[];
  /** The body was a JSON array: answer with an array of ids. */
  readonly batch: boolean;
}

function parseJsonBody(body: unknown): Parsed {
  return { drafts: draftsFromBody(body), batch: Array.isArray(body) };
}

/** Frameworks (Express with `express.json()`, say) may have read the body already; then the stream is empty. */
async function readDrafts(exchange: HttpExchange, type: MediaType, limits: TriggerLimits): Promise<Parsed> {
  const pre = exchange.parsedBody;
  let text: string;
  if (pre !== undefined && !(pre instanceof Uint8Array)) {
    if (type === 'json' && typeof pre === 'object') return parseJsonBody(pre);
    text = typeof pre === 'string' ? pre : JSON.stringify(pre);
  } else {
    text = decodeUtf8(pre instanceof Uint8Array ? pre : await exchange.readBody(limits.maxBody, limits.bodyTimeout));
  }
  if (type === 'text') {
    const query = exchange.url.searchParams;
    const meta = { event: query.get('event') ?? undefined, topic: query.get('topic') ?? undefined, private: privateFlag(query.get('private')) };
    return { drafts: [draftFromText(text, meta)], batch: false };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_JSON', `the body is not valid JSON: ${(error as Error).message}`);
  }
  return parseJsonBody(body);
}

/**
 * Topics that Mercure streams read as subscription events (URL patterns
 * resolve relative topics against the hub URL: `mercure/subscriptions/…`
 * becomes `/.well-known/mercure/subscriptions/…`) are the hub's own:
 * nobody forges one. (Mercure's own publish refuses the whole
 * `/.well-known/mercure` namespace, as its spec says; Herald's topics are
 * not Mercure's, so only what could be mistaken for the hub's is refused:
 * a topic such as ` ` that resolves to the hub URL itself is not.)
 * @throws HeraldError `HERALD_ERR_FORBIDDEN`
 */
function refuseReserved(topic: string | undefined, basePath: string | undefined): void {
  if (topic === undefined) return;
  const hubs = basePath === undefined ? [RESERVED_BASE] : [RESERVED_BASE, `http://reserved.invalid${basePath}${MERCURE_PATH}`];
  if (hubs.some((hubUrl) => isReserved(topic, hubUrl, SUBSCRIPTION_EVENTS))) {
    throw new HeraldError('HERALD_ERR_FORBIDDEN', `the topic ${JSON.stringify(topic.slice(0, 200))} names the hub's own subscription events (${SUBSCRIPTION_EVENTS}/…), which only the hub publishes`);
  }
}
const RESERVED_BASE = `http://reserved.invalid${MERCURE_PATH}`;
const SUBSCRIPTION_EVENTS = `${MERCURE_PATH}/subscriptions`;

export function rateLimited(wait: number, events: number): HeraldError {
  return Number.isFinite(wait)
    ? new HeraldError('HERALD_ERR_RATE_LIMITED', `this address publishes more than --publish-rate allows; retry in ${wait} s`, { retryAfter: wait })
    : new HeraldError('HERALD_ERR_RATE_LIMITED', `a batch of ${events} events is larger than --publish-burst allows; split it`);
}

/**
 * Publishes what the request carries.
 * @returns the ids (an array for a batch), or `undefined` when the client left before anything was stored
 */
export async function publishRequest(
  hub: Hub,
  exchange: HttpExchange,
  limits: TriggerLimits,
  access: AccessPolicy,
): Promise<Published | Published[] | undefined> {
  const type = mediaType(exchange.header('content-type'));
  const publisher = await access.authenticatePublisher(exchange);
  const client = exchange.remoteAddress ?? '';
  // A client out of tokens is refused before it sends its body; the full count is taken once the events are known.
  const before = limits.rate.peek(client);
  if (before > 0) throw rateLimited(before, 1);
  const { drafts, batch } = await readDrafts(exchange, type, limits);
  const wait = limits.rate.take(client, drafts.length);
  if (wait > 0) throw rateLimited(wait, drafts.length);
  // Nothing is stored unless every event is allowed.
  access.authorizePublish(publisher, drafts);
  for (const draft of drafts) refuseReserved(draft.topic, limits.basePath);
  // The client left meanwhile: store nothing it cannot hear about.
  if (exchange.isGone()) return undefined;
  const published = await hub.append(drafts);
  return batch ? published : published[0];
}
