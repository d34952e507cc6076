/**
 * `POST /trigger`: JSON (one event or an array) or plain text (the body is the data).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { AccessPolicy } from './access.js';
import type { PublishRateLimiter } from './rate-limit.js';
import { draftFromText, draftsFromBody } from '../hub/messages.js';
import type { EventDraft } from '../log/event-log.js';
import { decodeUtf8, readBody } from './body.js';
import { sendJson } from './respond.js';

export interface TriggerLimits {
  readonly maxBody: number;
  readonly bodyTimeout: number;
  readonly rate: PublishRateLimiter;
}

type MediaType = 'json' | 'text';

function mediaType(req: IncomingMessage): MediaType {
  const header = req.headers['content-type'] ?? '';
  const [type = '', ...params] = header.split(';').map((part) => part.trim().toLowerCase());
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
    header === ''
      ? 'Content-Type is missing; send application/json or text/plain'
      : `Content-Type "${header.slice(0, 100)}" is not supported; send application/json or text/plain`,
  );
}

/**
 * Frameworks (Express with `express.json()`, say) may have read the body already;
 * then it is on `req.body` and the stream is empty.
 */
function preparsedBody(req: IncomingMessage): unknown {
  const body = (req as IncomingMessage & { body?: unknown }).body;
  // Only a stream someone has read to the end: `complete` alone means received, not consumed.
  return req.readableEnded ? body : undefined;
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

async function readDrafts(req: IncomingMessage, type: MediaType, query: URLSearchParams, limits: TriggerLimits): Promise<Parsed> {
  const pre = preparsedBody(req);
  let text: string;
  if (pre !== undefined && !Buffer.isBuffer(pre)) {
    if (type === 'json' && typeof pre === 'object') return parseJsonBody(pre);
    text = typeof pre === 'string' ? pre : JSON.stringify(pre);
  } else {
    text = decodeUtf8(Buffer.isBuffer(pre) ? pre : await readBody(req, limits.maxBody, limits.bodyTimeout));
  }
  if (type === 'text') {
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

export async function handleTrigger(
  hub: Hub,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  limits: TriggerLimits,
  access: AccessPolicy,
): Promise<void> {
  const type = mediaType(req);
  const { drafts, batch } = await readDrafts(req, type, url.searchParams, limits);
  const wait = limits.rate.take(req.socket.remoteAddress ?? '', drafts.length);
  if (wait > 0) {
    throw Number.isFinite(wait)
      ? new HeraldError('HERALD_ERR_RATE_LIMITED', `this address publishes more than --publish-rate allows; retry in ${wait} s`, { 'Retry-After': String(wait) })
      : new HeraldError('HERALD_ERR_RATE_LIMITED', `a batch of ${drafts.length} events is larger than --publish-burst allows; split it`);
  }
  // Checked once the topics are known; nothing is stored unless every event is allowed.
  await access.checkPublish(req, url, drafts);
  // The connection broke meanwhile (the client left, or sent garbage after the body): store nothing it cannot hear about.
  if (req.socket.destroyed) return;
  const published = await hub.append(drafts);
  sendJson(res, 202, batch ? published : published[0]);
}
