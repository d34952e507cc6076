/**
 * HTTPS for the standalone server (`--tls-cert`, `--tls-key`): HTTP/2 by
 * ALPN (`h2`), HTTP/1.1 for clients that do not offer it.
 *
 * Over HTTP/2 a browser multiplexes every `EventSource` of a host on one
 * connection, so the six-connections-per-host limit of HTTP/1.1 no longer
 * caps how many streams a page can hold.
 *
 * The raw-socket fast path of the front door is for plain HTTP only: here
 * every connection goes to `node:http2`'s secure server, and the HTTP layer
 * answers both protocols through its compatibility API.
 */

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer, ServerResponse } from 'node:http';
import {
  createSecureServer,
  Http2ServerResponse,
  type Http2SecureServer,
  type ServerHttp2Session,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { HeraldError } from '../errors.js';
import { answerClientErrors, writeRawError } from './client-errors.js';
import type { RequestHandler } from './handler.js';
import { sendError } from './respond.js';

/** A certificate chain and its private key, as PEM bytes. */
export interface TlsCredentials {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * Reads and checks the certificate and key files, so that a bad one stops the
 * start with a one-line `HERALD_ERR_INVALID_OPTION` naming the option, never
 * quoting the files (a key file's text is a secret).
 *
 * @param files the paths given as `tlsCert` and `tlsKey`
 * @param label how to name an option in an error, e.g. `--tls-cert`
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` for a missing, unreadable or unsuitable file, or a key that is not the certificate's
 * @example
 * const credentials = loadTlsCredentials({ cert: './cert.pem', key: './key.pem' }, (key) => `--${key}`);
 */
export function loadTlsCredentials(
  files: { readonly cert: string; readonly key: string },
  label: (key: 'tlsCert' | 'tlsKey') => string,
): TlsCredentials {
  const fail = (key: 'tlsCert' | 'tlsKey', why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid ${label(key)}: ${why}`);
  };
  const read = (key: 'tlsCert' | 'tlsKey', path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      return fail(key, `cannot read ${JSON.stringify(path)} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  };
  const cert = read('tlsCert', files.cert);
  const key = read('tlsKey', files.key);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    return fail('tlsCert', `${JSON.stringify(files.cert)} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ERR_MISSING_PASSPHRASE' ? 'is encrypted; give an unencrypted key' : 'holds no PEM private key';
    return fail('tlsKey', `${JSON.stringify(files.key)} ${why}`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    fail('tlsKey', `${JSON.stringify(files.key)} is not the private key of ${label('tlsCert')} ${JSON.stringify(files.cert)}`);
  }
  try {
    // What the server itself will do with them: any other objection of OpenSSL's, now rather than at the first client.
    createSecureContext({ cert, key });
  } catch (error) {
    fail('tlsCert', `OpenSSL refuses the certificate and key: ${firstLine(error)}`);
  }
  return { cert, key };
}

function firstLine(error: unknown): string {
  return String((error as Error).message ?? error).split('\n')[0]!.slice(0, 200);
}

export interface SecureDoorSettings {
  /** How long a client has for its TLS handshake, then for its first request head (slowloris). */
  readonly headTimeout: number;
  /** How long a request body may take after the head. */
  readonly bodyTimeout: number;
  /** How often HTTP/1.1 head and request deadlines are checked. */
  readonly checkInterval: number;
}

/** The HTTP/1.1 settings of `node:http` that `node:http2`'s secure server reads for its fallback connections. */
interface Http1Fallback {
  closeIdleConnections(): void;
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
  keepAliveTimeout: number;
}

/** How long an idle HTTP/1.1 connection is kept for a next request: `node:http`'s default. */
const KEEP_ALIVE_TIMEOUT_MS = 5000;

/**
 * Whether a connection's first byte starts a plain-text HTTP request (a
 * method's first letter) rather than TLS, whose first record is a handshake
 * (content type 22, RFC 8446 §5.1).
 */
function isPlainHttp(firstByte: number | undefined): boolean {
  return firstByte !== undefined && firstByte >= 0x41 && firstByte <= 0x5a;
}

function ignore(): void {}

type Handler = RequestHandler;

/**
 * Serves the connections of an HTTPS port: a `node:http2` secure server with
 * HTTP/1.1 fallback, fed sockets accepted elsewhere (the listening server, or
 * the primary process of `--workers`). It keeps track of every connection and
 * HTTP/2 session so a shutdown can end them gracefully, then cut the rest.
 */
export class SecureDoor {
  readonly server: Http2SecureServer;
  private readonly fallback: Http1Fallback;
  /** Every TCP connection handed in, until it closes. */
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<ServerHttp2Session>();
  /** Connections whose handshake completed: errors on the others are TLS failures, not HTTP ones. */
  private readonly secured = new WeakSet<Duplex>();
  private closing: Promise<void> | undefined;
  private readonly headTimeout: number;

  constructor(handler: Handler, credentials: TlsCredentials, settings: SecureDoorSettings) {
    this.headTimeout = settings.headTimeout;
    const server = createSecureServer(
      {
        cert: credentials.cert,
        key: credentials.key,
        // ALPN offers h2 then http/1.1; clients without ALPN get HTTP/1.1.
        allowHTTP1: true,
        // A client that connects and never completes its handshake is cut like one that never sends its head.
        handshakeTimeout: settings.headTimeout,
      },
      // The HTTP layer only uses what both protocols' request and response objects share.
      handler,
    );
    // HTTP/1.1 connections: the same head and request deadlines as the plain server.
    const fallback = server as unknown as Http1Fallback;
    fallback.headersTimeout = settings.headTimeout;
    fallback.requestTimeout = settings.headTimeout + settings.bodyTimeout;
    fallback.connectionsCheckingInterval = settings.checkInterval;
    fallback.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('secureConnection', (socket: TLSSocket) => this.secured.add(socket));
    server.on('session', (session: ServerHttp2Session) => this.track(session, settings.headTimeout));
    answerSecureClientErrors(server, (socket) => this.secured.has(socket));
    // This server never listens itself: starting its deadline checks is what `listen` would have done.
    server.emit('listening');
    this.server = server;
    this.fallback = fallback;
  }

  /**
   * Takes a TCP connection (the `connection` listener of the listening
   * server). Its first byte decides: a TLS record goes to the secure server;
   * a plain-text HTTP request (`http://` to this port) gets a JSON `400`
   * saying to use `https://`, in plain text, instead of a silent close.
   */
  readonly accept = (socket: Socket): void => {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Errors before the hand-off (a reset) end here; the TLS socket handles its own after.
    socket.on('error', ignore);
    // The client must start within the head deadline; the TLS handshake then has its own (handshakeTimeout).
    const deadline = setTimeout(() => socket.destroy(), this.headTimeout);
    deadline.unref();
    socket.once('close', () => clearTimeout(deadline));
    socket.once('data', (first: Buffer) => {
      clearTimeout(deadline);
      socket.pause();
      if (isPlainHttp(first[0])) {
        this.refusePlainHttp(socket);
        return;
      }
      // The TLS socket takes over the connection and reads what was put back first.
      socket.unshift(first);
      this.server.emit('connection', socket);
    });
  };

  private refusePlainHttp(socket: Socket): void {
    writeRawError(socket, new HeraldError('HERALD_ERR_BAD_REQUEST', 'this port serves HTTPS: use an https:// URL'));
    // Read on, discarding, so the answer is not lost to a reset over unread bytes; cut it at the deadline.
    socket.on('data', ignore);
    socket.resume();
    setTimeout(() => socket.destroy(), this.headTimeout).unref();
  }

  /**
   * An HTTP/2 session must open a stream within the head deadline, as an
   * HTTP/1.1 connection must send a head; after that, its streams are the
   * HTTP layer's (an SSE stream is idle by nature).
   */
  private track(session: ServerHttp2Session, headTimeout: number): void {
    this.sessions.add(session);
    const deadline = setTimeout(() => session.destroy(), headTimeout);
    deadline.unref();
    session.once('stream', () => clearTimeout(deadline));
    session.once('close', () => {
      clearTimeout(deadline);
      this.sessions.delete(session);
    });
    // The hub shut down while this connection was being set up: no new streams.
    if (this.closing !== undefined) session.close();
  }

  /**
   * Stops taking requests: idle HTTP/1.1 connections close, HTTP/2 sessions
   * get GOAWAY and close once their streams ended. Resolves when every
   * connection is closed; {@link destroyAll} cuts those that linger.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close();
      this.fallback.closeIdleConnections();
      for (const session of this.sessions) session.close();
      const check = (): void => {
        if (this.sockets.size === 0) resolve();
      };
      for (const socket of this.sockets) socket.once('close', () => setImmediate(check));
      check();
    });
    return this.closing;
  }

  /** Cuts every connection still open (after a graceful end had its chance). */
  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }
}

/**
 * The JSON answers of {@link answerClientErrors}, on an HTTPS port: HTTP/1.1
 * parser errors and deadlines are answered as on a plain port (encrypted);
 * a failed TLS handshake is not HTTP, so it is only closed; and `CONNECT`
 * over HTTP/2 arrives as a request with a response, answered with `405`.
 */
function answerSecureClientErrors(server: Http2SecureServer, isSecured: (socket: Duplex) => boolean): void {
  const http1 = new EventEmitter();
  answerClientErrors(http1 as unknown as HttpServer);
  server.on('clientError', (error: Error, socket: Duplex) => {
    if (isSecured(socket)) http1.emit('clientError', error, socket);
    else socket.destroy();
  });
  server.on('checkExpectation', (req: unknown, res: unknown) => http1.emit('checkExpectation', req, res));
  server.on('connect', (req: unknown, second: Duplex | Http2ServerResponse, head?: Buffer) => {
    if (second instanceof Http2ServerResponse) {
      sendError(
        second as unknown as ServerResponse,
        new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', 'CONNECT is not supported: Herald is not a proxy', { allow: ['GET', 'POST'] }),
      );
    } else http1.emit('connect', req, second, head);
  });
}
