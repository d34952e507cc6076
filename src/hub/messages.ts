/**
 * What publishers send, checked and turned into drafts for the event log.
 * A batch is checked whole before anything is appended, so bad input is
 * never half-applied.
 */

import { HeraldError } from '../errors.js';
import type { EventDraft } from '../log/event-log.js';
import { checkEventType, parseTopic } from './topics.js';

/** One event as a publisher gives it. */
export interface PublishMessage {
  /** The SSE event type; omitted for the default `message`. */
  event?: string;
  /** The topic, a `/`-separated path; omitted: only subscribers without topic selectors receive it. */
  topic?: string;
  /** Any JSON value; subscribers receive its JSON text. */
  data: unknown;
  /** Only subscribers whose token allows the topic receive it; needs a topic. */
  private?: boolean;
}

/** Extra fields of a plain-text publish. */
export interface TextMessageMeta {
  event?: string | undefined;
  topic?: string | undefined;
  private?: boolean | undefined;
}

const KNOWN_FIELDS = new Set(['event', 'topic', 'data', 'private']);

function checkMeta(meta: TextMessageMeta, where: string): void {
  try {
    if (meta.event !== undefined) checkEventType(meta.event);
    if (meta.topic !== undefined) parseTopic(meta.topic);
    // Privacy is granted per topic; an event without one could only be "everything".
    if (meta.private === true && meta.topic === undefined) {
      throw new HeraldError('HERALD_ERR_INVALID_EVENT', 'a private event needs a topic: tokens grant private events by topic');
    }
  } catch (error) {
    if (error instanceof HeraldError && where !== '') throw new HeraldError(error.code, `${where}: ${error.message}`);
    throw error;
  }
}

/**
 * Checks one JSON publish and returns its draft.
 * @param where names the item in error messages, e.g. `event 3 of the batch`
 */
export function draftFromMessage(value: unknown, where = ''): EventDraft {
  const prefix = where === '' ? '' : `${where}: `;
  const invalid = (why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_EVENT', prefix + why);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalid('expected an object like {"event": "...", "topic": "...", "data": ...}');
  }
  const message = value as Record<string, unknown>;
  for (const field of Object.keys(message)) {
    if (!KNOWN_FIELDS.has(field)) invalid(`unknown field "${field}" (allowed: event, topic, data, private)`);
  }
  if (!('data' in message) || message.data === undefined) invalid('"data" is missing');
  const { event, topic } = message;
  const hidden = message.private;
  if (event !== undefined && typeof event !== 'string') invalid('"event" must be a string');
  if (topic !== undefined && typeof topic !== 'string') invalid('"topic" must be a string');
  if (hidden !== undefined && typeof hidden !== 'boolean') invalid('"private" must be true or false');
  checkMeta({ event: event as string | undefined, topic: topic as string | undefined, private: hidden as boolean | undefined }, where);
  let data: string | undefined;
  try {
    data = JSON.stringify(message.data);
  } catch (error) {
    invalid(`"data" cannot be serialized as JSON (${(error as Error).message})`);
  }
  if (data === undefined) invalid('"data" is not a JSON value');
  const draft = { event: event as string | undefined, topic: topic as string | undefined, data: data! };
  return hidden === true ? { ...draft, private: true } : draft;
}

/** Checks a JSON publish body: one message or a non-empty array of them. */
export function draftsFromBody(body: unknown): EventDraft[] {
  if (!Array.isArray(body)) return [draftFromMessage(body)];
  if (body.length === 0) throw new HeraldError('HERALD_ERR_EMPTY_BATCH', 'the batch is an empty array; send at least one event');
  return body.map((item, index) => draftFromMessage(item, `event ${index} of the batch`));
}

/** Checks a plain-text publish: the text is the data, verbatim. */
export function draftFromText(text: string, meta: TextMessageMeta = {}): EventDraft {
  checkMeta(meta, '');
  const draft = { event: meta.event, topic: meta.topic, data: text };
  return meta.private === true ? { ...draft, private: true } : draft;
}
