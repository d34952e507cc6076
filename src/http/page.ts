/**
 * The demo page at `/` and the dashboard at `/dashboard`: plain static files from `public/`, read once.
 */

import { readFileSync } from 'node:fs';
import type { HeaderFields, HttpExchange } from './exchange.js';

const PUBLIC_DIR = new URL('../../../public/', import.meta.url);
/** `herald/client` as built, served to pages as `/client.js` (and its parser beside it, where its import finds it). */
const CLIENT_DIR = new URL('../client/', import.meta.url);

/** Which of the `routes` option serves an asset: the demo page or the dashboard. */
export type AssetRoute = 'page' | 'dashboard';

const ASSETS: Readonly<Record<string, { file: string | URL; type: string; route: AssetRoute }>> = {
  // `import { connect } from '/client.js'`: the client module, no build step for a page.
  '/client.js': { file: new URL('index.js', CLIENT_DIR), type: 'text/javascript; charset=utf-8', route: 'page' },
  '/parser.js': { file: new URL('parser.js', CLIENT_DIR), type: 'text/javascript; charset=utf-8', route: 'page' },
  '/': { file: 'index.html', type: 'text/html; charset=utf-8', route: 'page' },
  '/assets/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8', route: 'page' },
  '/assets/style.css': { file: 'style.css', type: 'text/css; charset=utf-8', route: 'page' },
  '/dashboard': { file: 'dashboard.html', type: 'text/html; charset=utf-8', route: 'dashboard' },
  '/assets/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8', route: 'dashboard' },
  '/assets/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8', route: 'dashboard' },
};

const cache = new Map<string, Buffer>();

function load(file: string | URL): Buffer {
  const key = String(file);
  let content = cache.get(key);
  if (content === undefined) {
    // The built modules' source-map comments point at files the hub does not serve.
    content = typeof file === 'string' ? readFileSync(new URL(file, PUBLIC_DIR)) : Buffer.from(readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
    cache.set(key, content);
  }
  return content;
}

/**
 * Serves a page asset for GET/HEAD when its route is served; returns false when `path` is not one.
 * @param fields the request's own fields (its id, CORS), written first
 */
export function servePage(path: string, exchange: HttpExchange, served: ReadonlySet<string>, fields: HeaderFields): boolean {
  const asset = ASSETS[path];
  const { method } = exchange;
  if (asset === undefined || !served.has(asset.route) || (method !== 'GET' && method !== 'HEAD')) return false;
  const body = load(asset.file);
  exchange.respond(
    200,
    { ...fields, 'Content-Type': asset.type, 'Content-Length': String(body.length), 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' },
    method === 'HEAD' ? undefined : body,
  );
  return true;
}
