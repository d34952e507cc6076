import type { ServerResponse } from 'node:http';
import { HeraldError } from '../errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Answers with `{"error": {"code", "message"}}` and the error's status and headers. */
export function sendError(res: ServerResponse, error: unknown): void {
  const known = error instanceof HeraldError ? error : new HeraldError('HERALD_ERR_INTERNAL', 'an unexpected error occurred');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, known.status, known.toJSON(), { ...known.headers });
}
