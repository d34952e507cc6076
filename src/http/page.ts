/**
 * The demo page at `/` and the dashboard at `/dashboard`: plain static files from `public/`, read once.
 */

import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

const PUBLIC_DIR = new URL('../../../public/', import.meta.url);

const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/assets/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/assets/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/dashboard': { file: 'dashboard.html', type: 'text/html; charset=utf-8' },
  '/assets/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/assets/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Buffer>();

function load(file: string): Buffer {
  let content = cache.get(file);
  if (content === undefined) {
    content = readFileSync(new URL(file, PUBLIC_DIR));
    cache.set(file, content);
  }
  return content;
}

/** Serves a page asset for GET/HEAD; returns false when `path` is not one. */
export function servePage(path: string, method: string, res: ServerResponse): boolean {
  const asset = ASSETS[path];
  if (asset === undefined || (method !== 'GET' && method !== 'HEAD')) return false;
  const body = load(asset.file);
  res.writeHead(200, {
    'Content-Type': asset.type,
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(method === 'HEAD' ? undefined : body);
  return true;
}
