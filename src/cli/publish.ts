/**
 * `herald publish`: publishes one event (or a batch) with `POST /trigger`.
 */

import { parseArgs } from 'node:util';
import {
  argumentProblem,
  CommandFailure,
  describeErrorAnswer,
  endpoint,
  hubToken,
  hubUrl,
  networkProblem,
  processIO,
  readText,
  redact,
  send,
  UsageError,
  writeLine,
  type CommandIO,
} from './client.js';

export const PUBLISH_HELP = `Usage: herald publish <topic> [data] [options]
       herald publish --batch [options] < events.json

Publishes one event to a Herald hub (POST /trigger) and prints its id.
The data is JSON; without a data argument, or with -, it is read from stdin.

Options:
  --event <type>   the event type (default: message)
  --private        only subscribers whose token allows the topic receive it
  --text           send the data as plain text, verbatim, instead of JSON
                   (from stdin, one trailing line break is dropped)
  --batch          read a JSON array of full events from stdin, e.g.
                   [{"topic": "orders/1", "event": "order", "data": {}}, ...],
                   published in order, all or none; prints one id per line
  --url <base>     the hub (default: HERALD_URL, then http://127.0.0.1:3004)
  --token <jwt>    a publish token, sent as Authorization: Bearer (default: HERALD_TOKEN)
  --help           show this help and exit

Exit status: 0 published, 1 refused by the hub or unreachable, 2 bad usage.
Put -- before data that starts with a dash: herald publish counters -- -1

Examples:
  herald publish orders/42 '{"status": "paid"}' --event order.paid
  echo '{"status": "paid"}' | herald publish orders/42
  git log -1 | herald publish build/7 --text --event commit
`;

interface PublishRequest {
  readonly contentType: string;
  readonly body: string | Uint8Array;
  readonly query?: URLSearchParams;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

async function readAll(stdin: CommandIO['stdin']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function decode(bytes: Uint8Array, what: string): string {
  try {
    return STRICT_UTF8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new UsageError(`${what} is not valid UTF-8`);
  }
}

/** The data argument, or stdin when it is absent or `-`. */
async function readData(given: string | undefined, io: CommandIO, text: boolean): Promise<string | Uint8Array> {
  if (given !== undefined && given !== '-') return given;
  if (given === undefined && io.stdin.isTTY === true) {
    throw new UsageError('no data: give it as an argument, or pipe it on stdin (- reads stdin from the terminal)');
  }
  const bytes = await readAll(io.stdin);
  if (!text) return bytes;
  // `echo` and editors end the text with a line break the publisher rarely means to send.
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (bytes[end - 1] === 0x0d) end--;
  return bytes.subarray(0, end);
}

function parseJsonData(data: string | Uint8Array): unknown {
  const text = typeof data === 'string' ? data : decode(data, 'stdin');
  if (typeof data !== 'string' && text.trim() === '') throw new UsageError('no data: stdin was empty');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the data is not valid JSON (${(error as Error).message}); pass --text to send it as text`);
  }
}

interface Publish {
  readonly request: PublishRequest;
  readonly base: URL;
  readonly token: string | undefined;
}

/** Reads the command line, then the data: everything that can be wrong before asking the hub. */
async function buildRequest(argv: readonly string[], env: NodeJS.ProcessEnv, io: CommandIO): Promise<Publish | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        event: { type: 'string' },
        private: { type: 'boolean' },
        text: { type: 'boolean' },
        batch: { type: 'boolean' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw argumentProblem(error);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  const common = { base: hubUrl(values.url, env), token: hubToken(values.token, env) };

  if (values.batch === true) {
    for (const flag of ['event', 'private', 'text'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} does not apply to --batch: give each event its own fields`);
    }
    if (positionals.length > 1 || (positionals.length === 1 && positionals[0] !== '-')) {
      throw new UsageError('--batch reads a JSON array of events from stdin; it takes no topic or data argument');
    }
    const bytes = await readData(positionals[0], io, false);
    // Sent as it is: the hub checks the events and says precisely what is wrong.
    return { request: { contentType: 'application/json', body: bytes }, ...common };
  }

  const [topic, given, ...extra] = positionals;
  if (topic === undefined) throw new UsageError('missing <topic>: herald publish <topic> [data]');
  if (extra.length > 0) throw new UsageError(`too many arguments: ${JSON.stringify(extra[0])} (quote the data as one argument)`);
  const data = await readData(given, io, values.text === true);

  if (values.text === true) {
    const query = new URLSearchParams({ topic });
    if (values.event !== undefined) query.set('event', values.event);
    if (values.private === true) query.set('private', 'true');
    return { request: { contentType: 'text/plain; charset=utf-8', body: data, query }, ...common };
  }
  const event = {
    ...(values.event === undefined ? {} : { event: values.event }),
    topic,
    data: parseJsonData(data),
    ...(values.private === true ? { private: true } : {}),
  };
  return { request: { contentType: 'application/json', body: JSON.stringify(event) }, ...common };
}

/** The ids of a `202` answer: `{"id"}` for one event, `[{"id"}, ...]` for a batch. */
function idsOf(answer: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    parsed = undefined;
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const ids = items.map((item) => (item as { id?: unknown } | undefined)?.id);
  if (items.length === 0 || !ids.every((id): id is string => typeof id === 'string')) {
    throw new CommandFailure(`unexpected answer from the hub: ${JSON.stringify(answer.slice(0, 200))}`);
  }
  return ids;
}

/**
 * Runs `herald publish`; resolves to the exit status (0 published, 1 refused or unreachable, 2 bad usage).
 *
 * @example
 * const status = await publishCommand(['orders/42', '{"total": 12}'], process.env);
 */
export async function publishCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: CommandIO = processIO()): Promise<number> {
  let token: string | undefined;
  const fail = (message: string): void => writeLine(io.stderr, `herald publish: ${redact(message, token)}`);
  try {
    const built = await buildRequest(argv, env, io);
    if (built === 'help') {
      io.stdout.write(PUBLISH_HELP);
      return 0;
    }
    const { request, base } = built;
    token = built.token;
    const headers: Record<string, string> = {
      'Content-Type': request.contentType,
      'Content-Length': String(Buffer.byteLength(request.body)),
      Accept: 'application/json',
    };
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    let answer: string;
    let res;
    try {
      res = await send(endpoint(base, '/trigger', request.query), { method: 'POST', headers, body: request.body });
      answer = await readText(res);
    } catch (error) {
      fail(networkProblem(base, error));
      return 1;
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      fail(describeErrorAnswer(res, answer));
      return 1;
    }
    for (const id of idsOf(answer)) io.stdout.write(`${id}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(`${error.message} (see herald publish --help)`);
      return 2;
    }
    if (error instanceof CommandFailure) {
      fail(error.message);
      return 1;
    }
    throw error;
  }
}
