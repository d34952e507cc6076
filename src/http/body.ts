/**
 * Reading a request body with a size bound and a deadline, and decoding it
 * as strict UTF-8.
 */

import type { IncomingMessage } from 'node:http';
import { HeraldError } from '../errors.js';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new HeraldError('HERALD_ERR_INVALID_UTF8', 'the body is not valid UTF-8');
  }
}

function tooLarge(limit: number): HeraldError {
  return new HeraldError('HERALD_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes (--max-body)`);
}

/**
 * Reads the whole body. Rejects at once when `Content-Length` announces more
 * than `limit`, and as soon as the bytes received pass it.
 */
export function readBody(req: IncomingMessage, limit: number, deadlineMs: number): Promise<Buffer> {
  const announced = Number(req.headers['content-length']);
  if (Number.isFinite(announced) && announced > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => {
      finish(new HeraldError('HERALD_ERR_BODY_TIMEOUT', `the body did not arrive within ${deadlineMs} ms`));
    }, deadlineMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onError = (error: Error): void => finish(error);
    const onClose = (): void => finish(new Error('the client closed the request'));
    function finish(error: Error | undefined): void {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error === undefined) resolve(Buffer.concat(chunks, received));
      else {
        // Keep reading (and discarding) so the client can read our answer instead of a reset.
        req.resume();
        reject(error);
      }
    }
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
