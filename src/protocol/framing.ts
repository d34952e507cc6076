/**
 * The `text/event-stream` wire format, as a server writes it.
 *
 * Follows WHATWG HTML, "Server-sent events", §9.2.5 (parsing an event stream)
 * and §9.2.6 (interpreting an event stream). Pure functions, no I/O: the hub
 * frames each event once and shares the bytes with every subscriber.
 */

/** One event as it goes on the wire. */
export interface WireEvent {
  /** Becomes the client's `lastEventId`; must not hold CR, LF or NUL. */
  readonly id?: string | undefined;
  /** The event type; omitted (the client's default `message`) when undefined. */
  readonly event?: string | undefined;
  /** Any string; line breaks are carried by several `data:` lines. */
  readonly data: string;
  /** A reconnection delay (ms) sent with this event (Mercure updates may carry one). */
  readonly retry?: number | undefined;
}

/**
 * §9.2.5: "lines must be separated by either a U+000D CARRIAGE RETURN U+000A
 * LINE FEED (CRLF) character pair, a single U+000A LINE FEED (LF) character,
 * or a single U+000D CARRIAGE RETURN (CR) character". All three must split.
 */
const LINE_BREAK = /\r\n|\r|\n/;
const FORBIDDEN_IN_FIELD = /[\r\n\0]/;

/** Why a field value cannot be written, or `undefined` when it can. */
export function fieldValueProblem(value: string): string | undefined {
  if (FORBIDDEN_IN_FIELD.test(value)) return 'must not contain CR, LF or NUL';
  return undefined;
}

function checkField(name: string, value: string): void {
  const problem = fieldValueProblem(value);
  if (problem !== undefined) throw new TypeError(`SSE field "${name}" ${problem}`);
}

/**
 * Splits data the way the client will join it back: each piece becomes one
 * `data:` line, and the client rejoins them with LF (§9.2.6, "data" field).
 * An empty string is one empty line, so the event is still dispatched.
 */
export function splitDataLines(data: string): string[] {
  return data.split(LINE_BREAK);
}

/**
 * Frames one event. Always writes `field: value` with one space, because the
 * client strips exactly one leading space (§9.2.6), so a value that itself
 * begins with a space survives. Ends with a blank line, which dispatches it.
 *
 * @throws TypeError when `id` or `event` holds CR, LF or NUL (they would inject fields).
 * @example
 * frameEvent({ id: '7', event: 'greeting', data: 'hello\nworld' })
 * // 'id: 7\nevent: greeting\ndata: hello\ndata: world\n\n'
 */
export function frameEvent(event: WireEvent): string {
  let frame = '';
  if (event.id !== undefined) {
    checkField('id', event.id);
    frame += `id: ${event.id}\n`;
  }
  if (event.event !== undefined && event.event !== 'message') {
    checkField('event', event.event);
    frame += `event: ${event.event}\n`;
  }
  if (event.retry !== undefined) frame += frameRetry(event.retry);
  for (const line of splitDataLines(event.data)) frame += `data: ${line}\n`;
  return frame + '\n';
}

/**
 * A comment: ignored by clients, so it keeps idle connections (and proxies)
 * alive without dispatching anything. Multi-line text becomes several comments.
 */
export function frameComment(text = ''): string {
  let frame = '';
  for (const line of splitDataLines(text)) frame += line === '' ? ':\n' : `: ${line}\n`;
  return frame + '\n';
}

/**
 * The reconnection delay. §9.2.6: used by the client only "if the field value
 * consists of only ASCII digits", so only non-negative integers are written.
 */
export function frameRetry(milliseconds: number): string {
  if (!Number.isSafeInteger(milliseconds) || milliseconds < 0) {
    throw new RangeError(`retry must be a non-negative integer, got ${milliseconds}`);
  }
  return `retry: ${milliseconds}\n`;
}
