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
  // Already answered (headers out, or the connection answered and closed by the parser's error handler).
  if (res.headersSent || res.socket?.writable === false) {
    res.destroy();
    return;
  }
  sendJson(res, known.status, known.toJSON(), { ...known.headers });
}
