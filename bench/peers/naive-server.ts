/**
 * The peer "naive Node": the seed written the way a tutorial writes it.
 * A Set of responses; each publish writes a freshly built string to each
 * response, with no framing cache, no coalescing and no backpressure.
 * Used only as a baseline in the benchmark.
 */

import { createServer, type ServerResponse } from 'node:http';

const port = Number(process.env.PORT ?? 3005);
const host = process.env.HOST ?? '127.0.0.1';
const clients = new Set<{ res: ServerResponse; topic: string | null }>();
let nextId = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(': connected\n\n');
    const client = { res, topic: url.searchParams.get('topic') };
    clients.add(client);
    req.on('close', () => clients.delete(client));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/trigger') {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const messages = [JSON.parse(body)].flat() as { event?: string; topic?: string; data: unknown }[];
      const ids = messages.map((message) => {
        const id = ++nextId;
        for (const client of clients) {
          if (client.topic !== null && client.topic !== message.topic) continue;
          client.res.write(`id: ${id}\nevent: ${message.event ?? 'message'}\ndata: ${JSON.stringify(message.data)}\n\n`);
        }
        return { id: String(id) };
      });
      res.writeHead(202, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(ids.length === 1 ? ids[0] : ids));
    });
    return;
  }
  if (url.pathname === '/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', connections: clients.size }));
    return;
  }
  res.writeHead(404).end();
});

setInterval(() => {
  for (const client of clients) client.res.write(': heartbeat\n\n');
}, 30_000).unref();

server.listen(port, host, () => process.stdout.write(`naive listening on http://${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
