/**
 * The standalone server's front door. Every connection starts here:
 *
 * - a request that is plainly `GET <basePath>/events` over HTTP/1.x, with no
 *   body and nothing after its head, is served right on the socket: no HTTP
 *   parser, request or response object stays behind for the stream's life,
 *   which more than halves the memory an idle stream holds;
 * - anything else, and anything this reader is not sure of, goes to Node's
 *   HTTP server untouched (the bytes read so far are put back first), which
 *   answers it as usual, errors included.
 *
 * Both paths subscribe through the same {@link EventStreams} with the same
 * head and base path; only the bytes of the head are written here by hand.
 */

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { requestIdOf } from '../observe/logger.js';
import { writeRawError } from './client-errors.js';
import { subscriptionOf, type EventStreams } from './events.js';
import type { RequestView } from './exchange.js';
import type { Subscriber } from '../hub/subscriber.js';
import { SocketSink } from './node.js';
import { asHeraldError } from './respond.js';
import { formatHttp1Head, stripBasePath } from './stream-head.js';

/** Node's default `maxHeaderSize`: a longer head goes to Node, which answers 431. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const GET = Buffer.from('GET /');
const REQUEST_LINE = /^GET (\/[^\s]*) HTTP\/1\.[01]$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

/** Subscriptions are anonymous here: requests with credentials go to the routes, which check them. */
const ANONYMOUS = Object.freeze({ scope: undefined, expiresAt: undefined });
const ORIGIN = 'http://herald.invalid';

function ignore(): void {}

export class FrontDoor {
  /** Sockets of the streams served here, to cut at shutdown. */
  private readonly streams_ = new Set<Socket>();

  constructor(
    private readonly streams: EventStreams,
    private readonly http: Server,
    private readonly basePath: string | undefined,
    /** How long a client may take to send its request head, from its first byte (slowloris). */
    private readonly headTimeout: number,
    /** Told of each subscription refused here (for metrics). */
    private readonly refused: (error: unknown) => void = () => {},
  ) {}

  /** The `connection` listener of the listening server. */
  readonly accept = (socket: Socket): void => {
    socket.setNoDelay(true);
    // A deadline, not an idle timeout: a client dribbling a byte at a time must not hold the connection.
    const deadline = setTimeout(() => socket.destroy(), this.headTimeout);
    deadline.unref();
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      // Only `GET /…` can take the fast path; decide on the first bytes when possible.
      const prefix = Math.min(head.length, GET.length);
      if (head.compare(GET, 0, prefix, 0, prefix) !== 0) return handOff();
      if (hasBareLineFeed(head)) return handOff();
      const end = head.indexOf(HEAD_END);
      // Too long a head is Node's to refuse (431), whether or not it is complete.
      if ((end === -1 ? head.length : end) > MAX_HEAD_BYTES) return handOff();
      if (end === -1) return;
      // Anything after the head (a body, a pipelined request) is Node's to judge.
      if (end + HEAD_END.length !== head.length) return handOff();
      const request = parseHead(head.toString('latin1', 0, end), this.basePath);
      if (request === undefined) return handOff();
      detach();
      this.serve(socket, request);
    };
    const detach = (): void => {
      socket.off('data', onData);
      clearTimeout(deadline);
    };
    const handOff = (): void => {
      detach();
      socket.pause();
      if (head.length > 0) socket.unshift(head);
      this.http.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(deadline));
    // Errors before the hand-off (a reset) end here; Node's server adds its own handler after.
    socket.on('error', ignore);
  };

  private serve(socket: Socket, head: ParsedHead): void {
    const subscriber = this.subscribe(socket, head);
    if (subscriber !== undefined) this.track(socket, subscriber);
  }

  /**
   * Everything that needs the parsed head happens here, so no closure that
   * outlives the request (the close listener below) shares a scope with it:
   * an idle stream keeps its socket, not its request's URL and fields.
   */
  private subscribe(socket: Socket, head: ParsedHead): Subscriber | undefined {
    const request: RequestView = {
      method: 'GET',
      url: head.url,
      remoteAddress: socket.remoteAddress,
      header: (name) => head.fields.get(name),
    };
    const requestId = requestIdOf(head.fields.get('x-request-id'));
    try {
      return this.streams.subscribe(request, subscriptionOf(head.url.searchParams, head.fields.get('last-event-id')), ANONYMOUS, {
        requestId,
        cors: {},
        framing: 'close-delimited',
        open: (fields) => {
          socket.write(formatHttp1Head('200 OK', fields));
          return new SocketSink(socket);
        },
      });
    } catch (error) {
      this.refused(error);
      writeRawError(socket, asHeraldError(error), { 'X-Request-Id': requestId });
      return undefined;
    }
  }

  private track(socket: Socket, subscriber: Subscriber): void {
    this.streams_.add(socket);
    // The client has nothing more to say; reading on lets us see it leave (the sink tells the hub).
    socket.on('data', ignore);
    subscriber.onClose(() => this.streams_.delete(socket));
  }

  /** Cuts the streams still open (used after a graceful end had its chance). */
  destroyAll(): void {
    for (const socket of this.streams_) socket.destroy();
  }
}

interface ParsedHead {
  /** The target, parsed as the routes parse it. */
  readonly url: URL;
  /** Header values by lower-case name, repeated ones joined with `, ` as Node joins them. */
  readonly fields: ReadonlyMap<string, string>;
}

/** Reads a request head that can take the fast path; `undefined` for anything else. */
function parseHead(text: string, basePath: string | undefined): ParsedHead | undefined {
  const lines = text.split('\r\n');
  const match = REQUEST_LINE.exec(lines[0]!);
  if (match === null) return undefined;
  let url: URL;
  try {
    url = new URL(`${ORIGIN}${match[1]!}`);
  } catch {
    return undefined;
  }
  if (stripBasePath(url.pathname, basePath) !== '/events') return undefined;
  const fields = new Map<string, string>();
  // HTTP/1.1 requires Host; without one, Node's side answers the 400.
  let host = match[0].endsWith('1.0');
  for (let i = 1; i < lines.length; i++) {
    const header = HEADER_LINE.exec(lines[i]!);
    // Folded or malformed lines: let Node's parser decide.
    if (header === null) return undefined;
    const name = header[1]!.toLowerCase();
    // A body or a protocol switch is not a plain subscription.
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'upgrade' || name === 'expect') return undefined;
    // Requests with credentials are checked by the HTTP layer, which verifies tokens.
    // So are cross-origin requests, which need CORS headers.
    if (name === 'authorization' || name === 'cookie' || name === 'origin') return undefined;
    // Two ids to resume from: Node's parser decides which counts.
    if (name === 'last-event-id' && fields.has(name)) return undefined;
    if (name === 'host') host = true;
    // Read as latin1, as Node's parser reads header values, so both paths see the same values.
    const value = header[2]!;
    const earlier = fields.get(name);
    fields.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
  }
  if (!host) return undefined;
  if (url.searchParams.has('access_token')) return undefined;
  return { url, fields };
}

/** A line feed not preceded by a carriage return: Node's parser decides what such a head means. */
function hasBareLineFeed(head: Buffer): boolean {
  for (let at = head.indexOf(10); at !== -1; at = head.indexOf(10, at + 1)) if (at === 0 || head[at - 1] !== 13) return true;
  return false;
}
