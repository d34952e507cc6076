/**
 * Answers for what Node's HTTP parser refuses before Herald sees a request:
 * the same JSON errors as everything else, instead of Node's bare statuses.
 */

import type { Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { HeraldError } from '../errors.js';
import type { HeaderFields } from './exchange.js';
import { errorHeaders, jsonResponse, sendError } from './respond.js';
import { formatHttp1Head } from './stream-head.js';

/** Node's parser error codes, as Herald errors. */
function errorFor(code: string | undefined): HeraldError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeraldError('HERALD_ERR_HEADERS_TOO_LARGE', 'the request head is larger than 16 KB');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HeraldError('HERALD_ERR_REQUEST_TIMEOUT', 'the request did not arrive in time');
    default:
      return new HeraldError('HERALD_ERR_BAD_REQUEST', `the request is not well-formed HTTP (${code ?? 'parse error'})`);
  }
}

/** Writes a whole JSON error response on a raw socket and closes it; `fields` (the request id) go first. */
export function writeRawError(socket: Duplex, error: HeraldError, fields: HeaderFields = {}): void {
  const answer = jsonResponse(error.toJSON(), { ...fields, ...errorHeaders(error), Connection: 'close' });
  socket.end(formatHttp1Head(`${error.status} ${STATUS_CODES[error.status] ?? ''}`, answer.fields) + answer.body);
}

export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // A request on this connection is still being handled: an answer now would
    // look like its answer (a 400 for a publish that may still be stored).
    // Cutting the connection leaves its outcome unknown, never wrong; the
    // publish handler sees the closed socket and stores nothing if it can.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    // The request being handled is complete, so these bytes are a next request: answer nothing.
    const afterCompleteRequest = inFlight != null && inFlight.req.complete;
    if (afterCompleteRequest || !socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    // The request itself is broken (its head, or its body's framing): it gets the answer.
    writeRawError(socket, errorFor(error.code));
  });
  server.on('checkExpectation', (_req, res) => {
    sendError(res, new HeraldError('HERALD_ERR_EXPECTATION_FAILED', 'only "Expect: 100-continue" is supported'));
  });
  server.on('connect', (_req, socket: Duplex) => {
    writeRawError(socket, new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', 'CONNECT is not supported: Herald is not a proxy', { allow: ['GET', 'POST'] }));
  });
}
