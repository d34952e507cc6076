/**
 * `GET /metrics` answers, on the main port or on `--metrics-port`.
 */

import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { HeraldError } from '../errors.js';
import { sendError } from './respond.js';

/** Metrics text: one hub's registry, or every worker's, gathered by the primary. */
export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

/** Answers `GET /metrics` in Prometheus' text format. */
export async function serveMetrics(source: MetricsSource, res: ServerResponse): Promise<void> {
  const text = await source.render();
  res.writeHead(200, { 'Content-Type': source.contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * `--metrics-port`: a plain HTTP server of its own for `GET /metrics` (and
 * `GET /health` when given), so the main port need not expose them.
 */
export function listenForMetrics(source: MetricsSource, port: number, host: string, health?: RequestListener): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') serveMetrics(source, res).catch((error: unknown) => sendError(res, error));
    else if (path === '/health' && health !== undefined) health(req, res);
    else sendError(res, new HeraldError('HERALD_ERR_NOT_FOUND', `this port serves GET /metrics${health === undefined ? '' : ' and GET /health'}`));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
