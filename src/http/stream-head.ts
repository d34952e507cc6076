/**
 * What every path that opens a stream shares: the head of the answer, and
 * how a request's path loses the base path. The front door, `node:http`,
 * HTTP/2 and `hub.fetch` all call these, so their answers cannot drift apart
 * (a test compares them byte for byte).
 */

import type { HeaderFields } from './exchange.js';

/** How the transport delimits the stream's body. */
export type StreamFraming =
  /** HTTP/1.x: the body runs until the connection closes (no chunking), so the socket carries exactly the SSE bytes. */
  | 'close-delimited'
  /** HTTP/2 and `Response` bodies: the transport frames the body; connection-specific fields are forbidden (RFC 9113 §8.2.2). */
  | 'framed';

/**
 * The fields of a stream's `200` answer, in order.
 *
 * @param requestId the request's id, echoed as `X-Request-Id`
 * @param cors the CORS fields for the request's origin, if any
 */
export function streamHead(requestId: string, cors: HeaderFields, framing: StreamFraming): HeaderFields {
  return {
    'Content-Type': 'text/event-stream; charset=utf-8',
    // no-transform: compression proxies must not buffer or gzip the stream.
    'Cache-Control': 'no-cache, no-transform',
    // nginx: do not buffer this response.
    'X-Accel-Buffering': 'no',
    'X-Request-Id': requestId,
    ...cors,
    ...(framing === 'close-delimited' ? { Connection: 'close' } : {}),
  };
}

/**
 * The path the routes see: `path` without `basePath` (`/herald/events` →
 * `/events`; `/herald` → `/`). A path outside the base path is returned as
 * it is: a hub behind a proxy that strips the prefix itself still answers.
 */
export function stripBasePath(path: string, basePath: string | undefined): string {
  if (basePath === undefined || basePath === '') return path;
  if (path === basePath) return '/';
  return path.startsWith(`${basePath}/`) ? path.slice(basePath.length) : path;
}

/** Writes a head as HTTP/1.1 text, the way `node:http` writes it: the fields in order, then `Date`. */
export function formatHttp1Head(status: string, fields: HeaderFields): string {
  let head = `HTTP/1.1 ${status}\r\n`;
  for (const [name, value] of Object.entries(fields)) head += `${name}: ${value}\r\n`;
  return `${head}Date: ${new Date().toUTCString()}\r\n\r\n`;
}
