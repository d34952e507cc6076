/**
 * Answers every transport gives alike: JSON bodies, and errors as
 * `{"error": {"code", "message"}}` with their status and the headers their
 * facts call for. The one place that turns an error into HTTP.
 */

import type { ServerResponse } from 'node:http';
import { HeraldError, isHeraldError } from '../errors.js';
import type { HeaderFields, HttpExchange } from './exchange.js';

/** Any failure as a HeraldError: unknown ones become `HERALD_ERR_INTERNAL` (their details stay in the log). */
export function asHeraldError(error: unknown): HeraldError {
  return isHeraldError(error) ? error : new HeraldError('HERALD_ERR_INTERNAL', 'an unexpected error occurred');
}

/** The response headers an error's facts call for: `Retry-After`, `Allow`, `WWW-Authenticate`. */
export function errorHeaders(error: HeraldError): Record<string, string> {
  const { retryAfter, allow, challenge } = error.details;
  const fields: Record<string, string> = {};
  if (retryAfter !== undefined) fields['Retry-After'] = String(Math.max(0, Math.ceil(retryAfter)));
  if (allow !== undefined) fields.Allow = allow.join(', ');
  if (challenge !== undefined) fields['WWW-Authenticate'] = challenge;
  return fields;
}

/** A JSON answer's head and body. */
export function jsonResponse(body: unknown, fields: HeaderFields = {}): { fields: HeaderFields; body: string } {
  const text = JSON.stringify(body);
  return {
    fields: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-store', ...fields },
    body: text,
  };
}

export function respondJson(exchange: HttpExchange, status: number, body: unknown, fields: HeaderFields = {}): void {
  const answer = jsonResponse(body, fields);
  exchange.respond(status, answer.fields, answer.body);
}

/** Answers an error; `fields` (the request id, CORS) go before the error's own. */
export function respondError(exchange: HttpExchange, error: unknown, fields: HeaderFields = {}): void {
  const known = asHeraldError(error);
  respondJson(exchange, known.status, known.toJSON(), { ...fields, ...errorHeaders(known) });
}

/** For `node:http` code outside the routes (the metrics port, parser errors): the same JSON answers. */
export function sendJson(res: ServerResponse, status: number, body: unknown, fields: HeaderFields = {}): void {
  const answer = jsonResponse(body, fields);
  res.writeHead(status, answer.fields);
  res.end(answer.body);
}

export function sendError(res: ServerResponse, error: unknown): void {
  const known = asHeraldError(error);
  // Already answered (headers out, or the connection answered and closed by the parser's error handler).
  if (res.headersSent || res.socket?.writable === false) {
    res.destroy();
    return;
  }
  sendJson(res, known.status, known.toJSON(), errorHeaders(known));
}
