/**
 * `herald token`: mints an HS256 token for development and tests.
 */

import { parseArgs } from 'node:util';
import { mintToken } from '../auth/index.js';
import { parseDuration } from '../config/units.js';
import { HeraldError } from '../errors.js';

export const TOKEN_HELP = `Usage: herald token [options]

Prints a token signed with the HS256 secret of --jwt-key, for development and tests.

Options:
  --publish <selector>    topics the token may publish to (repeat for several), e.g. 'orders/*'
  --subscribe <selector>  topics the token may receive (repeat for several), e.g. '**'
  --ttl <duration>        lifetime, e.g. 15m or 1h (default: 1h)
  --subject <text>        the token's sub claim, shown in logs
  --key <secret>          the HS256 secret (default: HERALD_JWT_KEY, then HERALD_JWT_PUBLISHER_KEY)
  --help                  show this help and exit

Example:
  herald token --publish 'orders/*' --subscribe '**' --ttl 1h
`;

/** Runs the command; returns the text to print. */
export async function tokenCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        publish: { type: 'string', multiple: true },
        subscribe: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        subject: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${(error as Error).message.split('\n')[0]} (see herald token --help)`);
  }
  if (values.help === true) return TOKEN_HELP;
  const key = values.key ?? (env.HERALD_JWT_KEY || env.HERALD_JWT_PUBLISHER_KEY);
  if (key === undefined || key === '') {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'no key: pass --key or set HERALD_JWT_KEY to the secret the hub checks tokens with');
  }
  const ttl = parseDuration(values.ttl ?? '1h');
  if (ttl === undefined || ttl < 1000) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid --ttl ${JSON.stringify(values.ttl)}: expected a duration of at least 1s, such as 15m or 1h`);
  if ((values.publish ?? []).length === 0 && (values.subscribe ?? []).length === 0) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'a token needs rights: give --publish and/or --subscribe selectors');
  }
  const token = await mintToken({
    key,
    publish: values.publish ?? [],
    subscribe: values.subscribe ?? [],
    ttlSeconds: Math.round(ttl / 1000),
    ...(values.subject === undefined ? {} : { subject: values.subject }),
  });
  return `${token}\n`;
}
