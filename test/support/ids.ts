/**
 * Event ids as the README documents them, `<ms>-<seq>`, read independently
 * of the server's own code.
 */

import assert from 'node:assert/strict';

/** The two numbers of an id; fails the test if the id has another shape. */
export function parseId(id: string): [bigint, bigint] {
  const match = /^(\d+)-(\d+)$/.exec(id);
  assert.ok(match, `id ${JSON.stringify(id)} has the documented <ms>-<seq> shape`);
  return [BigInt(match[1]!), BigInt(match[2]!)];
}

/** Compares two ids by both numbers (negative: `a` is older). */
export function compareIds(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}
