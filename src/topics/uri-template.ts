/**
 * RFC 6570 URI templates as selectors (Mercure classic `topic=`).
 *
 * uri-template-router compiles a template into a deterministic state
 * machine, so a match costs one step per character of the topic, whatever
 * the template: there is no backtracking to guard against at match time.
 * Compiling is what costs, and it grows steeply (measured on 1.0.0, Node 20):
 *
 * | template                               | compile  |
 * |----------------------------------------|----------|
 * | `{id}`, `{user}/books/{book}`          | 1–4 ms   |
 * | `https://example.com/` + 100 × `a` + `{id}` | 2.5 s |
 * | `{id}/` + 100 × `a`                    | 140 ms   |
 * | 8 × `{?v}`                             | 1.6 s    |
 * | 3 × `{?name0123456789}`                | 0.8 s    |
 *
 * Hence three measures:
 * 1. The literal text before the first `{` is not compiled: it is compared
 *    with `startsWith`, and only the rest (the *body*) goes to the library.
 *    The state machine of a literal is a chain, so this matches exactly what
 *    the whole template would, and the usual `https://host/path/{id}` costs
 *    milliseconds whatever the length of its URL.
 * 2. Static caps, checked before any compile: `MAX_TEMPLATE_EXPRESSIONS`
 *    expressions, a body of `MAX_TEMPLATE_BODY_LENGTH` characters.
 * 3. A time budget: the compile runs under `vm`'s `timeout`, which
 *    interrupts it after `TEMPLATE_COMPILE_BUDGET_MS`; such a template is
 *    refused as too complex (and the caller caches the refusal).
 *
 * Two deviations from the library, both toward RFC 3986:
 * - It accepts only upper-case hex in a percent-escape of the topic (`%2F`,
 *   never `%2f`), so a topic written with lower-case escapes would match no
 *   template. RFC 3986 §6.2.2.1 makes the two spellings equivalent, so the
 *   escapes of both the template and the topic are upper-cased first.
 * And one looseness of the library, kept: it treats `{x:3}` as a variable
 * with no length limit (such a template matches more than it expands to).
 */

import vm from 'node:vm';
import pkg from 'uri-template-router';
import { MAX_MATCHED_TOPIC_LENGTH, MAX_SELECTOR_BYTES, PatternRefused } from './url-pattern.js';

const { Router } = pkg;

/** Expressions (`{…}`) allowed in one template. */
export const MAX_TEMPLATE_EXPRESSIONS = 16;
/** Characters allowed from the first `{` to the end: the part the library compiles. */
export const MAX_TEMPLATE_BODY_LENGTH = 256;
/** Time one template may take to compile before it is refused (ordinary templates take 1–10 ms). */
export const TEMPLATE_COMPILE_BUDGET_MS = 100;

const ESCAPE = /%[0-9a-fA-F]{2}/g;

/**
 * Literal text of a template (RFC 6570 §2.1 `literals`, in the Basic
 * Multilingual Plane as uri-template-router reads it: one UTF-16 unit at a
 * time, so it rejects characters outside it).
 */
const LITERALS = /^(?:[\x21\x23\x24\x26\x28-\x3B\x3D\x3F-\x5B\x5D\x5F\x61-\x7A\x7E\xA0-\uD7FF\uE000-\uFDCF\uFDF0-\uFFEF]|%[0-9A-Fa-f]{2})*$/;

/** Upper-cases the hex digits of every percent-escape (RFC 3986 §6.2.2.1). */
export function normalizeEscapes(text: string): string {
  return text.includes('%') ? text.replace(ESCAPE, (escape) => escape.toUpperCase()) : text;
}

/** The literal text of `source` before its first `{` (all of it if none). */
export function templatePrefix(source: string): string {
  const brace = source.indexOf('{');
  return brace === -1 ? source : source.slice(0, brace);
}

/** A template the library compiled. */
export interface CompiledTemplate {
  /** The literal text before the first expression, escapes upper-cased: every topic the template matches starts with it (once normalised). */
  readonly prefix: string;
  /** Whether the topic, already passed through `normalizeEscapes`, matches. Equality with the source is the caller's check. */
  testNormalized(topic: string): boolean;
}

/** How many expressions (`{`) the source opens. */
function expressionCount(source: string): number {
  let n = 0;
  for (let i = source.indexOf('{'); i !== -1; i = source.indexOf('{', i + 1)) n++;
  return n;
}

/**
 * A context to run compiles in, only for `timeout`: V8 interrupts whatever
 * JavaScript runs on the thread when the time is up, the library's code
 * included, and `runInContext` then throws `ERR_SCRIPT_EXECUTION_TIMEOUT`.
 */
let budget: { readonly context: vm.Context; readonly script: vm.Script } | undefined;

function withinBudget(job: () => void): 'done' | 'timeout' {
  // Made on first use: a hub without templates never pays for a context.
  budget ??= { context: vm.createContext({ job: undefined }), script: new vm.Script('job()') };
  const { context, script } = budget;
  context.job = job;
  try {
    script.runInContext(context, { timeout: TEMPLATE_COMPILE_BUDGET_MS });
    return 'done';
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return 'timeout';
    throw error;
  } finally {
    context.job = undefined;
  }
}

/**
 * Compiles `source` as a URI template, or returns `undefined` when it is not
 * one the library can match (no `{`, a syntax error, a reused variable, a
 * character RFC 6570 does not allow in a literal): the selector is then an
 * exact topic, as in the reference hub.
 * @throws PatternRefused (`too-complex`) past a cap or the time budget: a
 * limit of Herald's, which the client is told about rather than left with a
 * selector that silently matches nothing.
 */
export function compileTemplate(source: string): CompiledTemplate | undefined {
  if (!source.includes('{')) return undefined;
  if (Buffer.byteLength(source, 'utf8') > MAX_SELECTOR_BYTES) {
    throw new PatternRefused('too-complex', `it is longer than ${MAX_SELECTOR_BYTES} bytes`);
  }
  const expressions = expressionCount(source);
  if (expressions > MAX_TEMPLATE_EXPRESSIONS) {
    throw new PatternRefused('too-complex', `it has ${expressions} expressions; at most ${MAX_TEMPLATE_EXPRESSIONS} are allowed`);
  }
  const template = normalizeEscapes(source);
  const brace = template.indexOf('{');
  const prefix = template.slice(0, brace);
  const body = template.slice(brace);
  // The library would have thrown on this literal text, had it seen it.
  if (!LITERALS.test(prefix)) return undefined;
  if (body.length > MAX_TEMPLATE_BODY_LENGTH) {
    throw new PatternRefused('too-complex', `its text from the first "{" on is ${body.length} characters long; at most ${MAX_TEMPLATE_BODY_LENGTH} are allowed`);
  }
  // One router per template: routers order overlapping templates and throw on duplicates, which only one template avoids.
  const router = new Router();
  let outcome: 'done' | 'timeout';
  try {
    outcome = withinBudget(() => void router.addTemplate(body, {}, true));
  } catch {
    return undefined;
  }
  if (outcome === 'timeout') {
    throw new PatternRefused('too-complex', `it takes longer than ${TEMPLATE_COMPILE_BUDGET_MS} ms to compile (long literal text or many named expressions after the first "{")`, true);
  }
  return {
    prefix,
    testNormalized(topic: string): boolean {
      if (topic.length > MAX_MATCHED_TOPIC_LENGTH || !topic.startsWith(prefix)) return false;
      try {
        return router.resolveURI(topic.slice(prefix.length)) !== undefined;
      } catch {
        return false;
      }
    },
  };
}
