/**
 * The hub's own server: the listening socket, the doors connections go
 * through (the front door's fast path and `node:http`, or HTTPS with
 * HTTP/2), and closing them at shutdown.
 */

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { HeraldError } from '../errors.js';
import { answerClientErrors } from './client-errors.js';
import { FrontDoor } from './front-door.js';
import type { HttpLayer } from './handler.js';
import { SecureDoor, type TlsCredentials } from './tls.js';

/**
 * Pending connections the kernel queues before accepting. Node's default (511)
 * overflows in a reconnect storm, and each dropped SYN costs the client a
 * one-second retransmit; the kernel caps this at `net.core.somaxconn`.
 */
export const LISTEN_BACKLOG = 4096;

/** How long a publisher may take to send its body before it gets `408`. */
export const BODY_TIMEOUT_MS = 30_000;
/** How often Node checks its connections' head and request deadlines (its default, 30 s, lets them run late). */
const DEADLINE_CHECK_MS = 1000;
/** How long busy connections get to finish after a graceful end, before they are cut. */
const GRACE_MS = 500;

export interface Listening {
  /**
   * The listening server; its connections go to Herald's front door, then to a `node:http` server,
   * or with `tlsCert` to a `node:http2` secure server (HTTP/2, HTTP/1.1 fallback).
   */
  readonly server: Server;
  /** e.g. `http://127.0.0.1:3004`, or `https://127.0.0.1:3004` with `tlsCert` */
  readonly url: string;
  readonly port: number;
}

export interface ServerSettings {
  readonly headTimeout: number;
  readonly basePath: string | undefined;
  /** With `tlsCert`: the certificate and key, read and checked already. */
  readonly tls: TlsCredentials | undefined;
}

/** The URL a listening address is reached at. */
export function urlOf(address: AddressInfo, secure: boolean): string {
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${secure ? 'https' : 'http'}://${shownHost}:${address.port}`;
}

export class HubServer {
  private server: Server | undefined;
  private frontDoor: FrontDoor | undefined;
  private http: HttpServer | undefined;
  private secureDoor: SecureDoor | undefined;

  constructor(
    private readonly layer: HttpLayer,
    private readonly settings: ServerSettings,
  ) {}

  /** The `connection` listener of the doors, opened on first call. */
  accept(): (socket: Socket) => void {
    const open = this.frontDoor?.accept ?? this.secureDoor?.accept;
    if (open !== undefined) return open;
    const { tls, headTimeout } = this.settings;
    if (tls !== undefined) {
      // HTTPS: no raw-socket fast path; every connection goes to the secure server, whatever its protocol.
      this.secureDoor = new SecureDoor(this.layer.handle, tls, {
        headTimeout,
        bodyTimeout: BODY_TIMEOUT_MS,
        checkInterval: Math.min(DEADLINE_CHECK_MS, headTimeout),
      });
      return this.secureDoor.accept;
    }
    // Deadlines against slow clients (slowloris): the head within --head-timeout, the body within 30 s more.
    // Host is checked by the HTTP layer, so its absence gets a JSON answer like every other error.
    const http = createHttpServer(
      {
        noDelay: true,
        headersTimeout: headTimeout,
        requestTimeout: headTimeout + BODY_TIMEOUT_MS,
        connectionsCheckingInterval: Math.min(DEADLINE_CHECK_MS, headTimeout),
        requireHostHeader: false,
      },
      this.layer.handle,
    );
    answerClientErrors(http);
    // This server never listens itself (the front door hands it connections), so start
    // its header and request timeouts the way `listen` would.
    http.emit('listening');
    this.http = http;
    this.frontDoor = new FrontDoor(this.layer.streams, http, this.settings.basePath, headTimeout, this.layer.refused);
    return this.frontDoor.accept;
  }

  /** Listens on `port` and `host`; the connections go through {@link accept}'s doors. */
  async listen(port: number, host: string): Promise<Listening> {
    if (this.server !== undefined) throw new HeraldError('HERALD_ERR_INVALID_STATE', 'the hub is already listening');
    const server = createNetServer({ noDelay: true }, this.accept());
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        resolve({ server, port: address.port, url: urlOf(address, this.settings.tls !== undefined) });
      });
    });
  }

  /** Stops taking connections (the streams are the hub's to end first). */
  stopListening(): Promise<void> {
    const { server } = this;
    return server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Closes the doors once the hub has ended its streams: idle connections at
   * once, busy ones after a grace period; resolves when the listening socket is closed.
   */
  async close(listening: Promise<void>): Promise<void> {
    const { http, frontDoor, secureDoor } = this;
    if (http !== undefined && frontDoor !== undefined) {
      http.close();
      http.closeIdleConnections();
      // Connections still busy after a grace period (a stalled upload, a client that stopped reading) are cut.
      const force = setTimeout(() => {
        http.closeAllConnections();
        frontDoor.destroyAll();
      }, GRACE_MS);
      force.unref();
      await listening;
      clearTimeout(force);
    } else if (secureDoor !== undefined) {
      // Streams were ended: HTTP/2 sessions get GOAWAY and close once their streams are done.
      const force = setTimeout(() => secureDoor.destroyAll(), GRACE_MS);
      force.unref();
      await Promise.all([listening, secureDoor.close()]);
      clearTimeout(force);
    } else {
      await listening;
    }
  }
}
