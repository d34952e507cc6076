/**
 * One HTTP request and its answer, as every transport hands it to the
 * routes: `node:http` and `node:http2` (through their shared request and
 * response API), Web-standard `Request`/`Response` (`hub.fetch`), and the
 * front door's raw sockets. The routes never see a transport's own objects,
 * so one implementation of each route serves them all.
 */

import type { StreamSink } from '../hub/sink.js';
import type { StreamFraming } from './stream-head.js';

/** Response header fields in the order they are written. */
export type HeaderFields = Readonly<Record<string, string>>;

/** What the routes read of a request. */
export interface RequestView {
  /** Upper-case, e.g. `GET`. */
  readonly method: string;
  /** The request target, parsed (the base path still on it). */
  readonly url: URL;
  /** A header's value by lower-case name; repeated headers joined (`, `, or `; ` for cookies). */
  header(name: string): string | undefined;
  /** The client's address, when the transport knows it. */
  readonly remoteAddress: string | undefined;
}

export interface HttpExchange extends RequestView {
  /** `1.0`, `1.1` or `2.0`; `undefined` where the transport has no version (a `Request`). */
  readonly httpVersion: string | undefined;
  /** How this transport delimits a stream's body, which decides a field of its head. */
  readonly streamFraming: StreamFraming;
  /**
   * Reads the whole body: at most `limit` bytes, within `deadlineMs`.
   * @throws HeraldError `HERALD_ERR_BODY_TOO_LARGE`, `HERALD_ERR_BODY_TIMEOUT`, `HERALD_ERR_REQUEST_ABORTED`
   */
  readBody(limit: number, deadlineMs: number): Promise<Uint8Array>;
  /** A body a framework read and parsed already (Express's `express.json()`), else `undefined`. */
  readonly parsedBody: unknown;
  /** Whether the client has gone: an answer would have nowhere to go. */
  isGone(): boolean;
  /** Answers with a whole response. */
  respond(status: number, fields: HeaderFields, body?: string | Uint8Array): void;
  /** Answers `200` with the stream's head (see `streamHead`) and returns the stream, open for writing. */
  openStream(fields: HeaderFields): StreamSink;
}
