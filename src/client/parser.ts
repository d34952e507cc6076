/**
 * A `text/event-stream` parser, as a client reads the wire.
 *
 * Follows WHATWG HTML, "Server-sent events", §9.2.5 (parsing an event stream)
 * and §9.2.6 (interpreting an event stream) step by step. No dependency and
 * no platform type: it runs in browsers and Node alike, and is what
 * `herald/client` uses (the package's `eventsource-parser` is a Node
 * dependency of the hub, which a page importing `/client.js` cannot load).
 */

/** One dispatched event (§9.2.6, "dispatch the event"). */
export interface ParsedEvent {
  /** The event type buffer, or `message` when it was empty. */
  readonly type: string;
  /** The data buffer without its last LF. */
  readonly data: string;
  /** The last event ID string at the time of dispatch (it persists across events, and may be `''`). */
  readonly id: string;
}

export interface ParserHandlers {
  /** An event was dispatched (a blank line ended a non-empty data buffer). */
  onEvent(event: ParsedEvent): void;
  /** A `retry:` field of ASCII digits only: the new reconnection time in ms. */
  onRetry?(milliseconds: number): void;
  /** A comment line (it starts with `:`), without the colon and one leading space. */
  onComment?(text: string): void;
}

export interface EventStreamParser {
  /** Decodes and interprets the next bytes of the stream. */
  feed(bytes: Uint8Array): void;
  /**
   * Starts a new stream (a new connection): a fresh UTF-8 decoder (so a
   * BOM at its start is stripped again), empty line, data and type buffers.
   * The last event ID buffer becomes the last event ID string, which
   * persists across connections as the `EventSource` object's does.
   */
  reset(): void;
  /** The last event ID string: set from the id buffer at each dispatch, also of events without data. */
  readonly lastEventId: string;
}

interface TextDecoderLike {
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
type TextDecoderClass = new (label?: string) => TextDecoderLike;

const LF = 10;
const ASCII_DIGITS = /^[0-9]+$/;

/**
 * Creates a parser. `lastEventId` seeds the last event ID (a resumed client's).
 *
 * @example
 * const parser = createParser({ onEvent: (event) => console.log(event.type, event.data) });
 * parser.feed(new TextEncoder().encode('event: greeting\ndata: hello\n\n'));
 * // greeting hello
 */
export function createParser(handlers: ParserHandlers, lastEventId = ''): EventStreamParser {
  const Decoder = (globalThis as unknown as { TextDecoder: TextDecoderClass }).TextDecoder;
  // §9.2.5: "Streams must be decoded using the UTF-8 decode algorithm", which
  // strips one leading BOM; TextDecoder does that (ignoreBOM is false) and,
  // with `stream: true`, keeps a character split across chunks whole.
  let decoder = new Decoder('utf-8');
  /** The unfinished line of the previous chunks. */
  let pending = '';
  /** The last chunk ended with CR: a LF opening the next one belongs to the same line break. */
  let skipLF = false;
  // §9.2.6: "a data buffer, an event type buffer, and a last event ID buffer".
  let data = '';
  let type = '';
  let idBuffer = lastEventId;
  let lastId = lastEventId;

  const dispatch = (): void => {
    // "1. Set the last event ID string of the event source to the value of the last event ID buffer."
    lastId = idBuffer;
    // "2. If the data buffer is an empty string, set the data buffer and the event type buffer to the empty string and return."
    if (data === '') {
      type = '';
      return;
    }
    // "3. If the data buffer's last character is a U+000A LINE FEED (LF) character, then remove the last character."
    const event: ParsedEvent = { type: type === '' ? 'message' : type, data: data.slice(0, -1), id: lastId };
    // "7. Set the data buffer and the event type buffer to the empty string."
    data = '';
    type = '';
    handlers.onEvent(event);
  };

  const line = (text: string): void => {
    // "If the line is empty (a blank line): Dispatch the event."
    if (text === '') return dispatch();
    const colon = text.indexOf(':');
    // "If the line starts with a U+003A COLON character (:): Ignore the line." (reported, for liveness)
    if (colon === 0) {
      handlers.onComment?.(text.charCodeAt(1) === 32 ? text.slice(2) : text.slice(1));
      return;
    }
    // "If the line contains a colon: field is before it, value after it, without one leading space";
    // "Otherwise, the whole line is the field name, and the value is the empty string."
    let field = text;
    let value = '';
    if (colon > 0) {
      field = text.slice(0, colon);
      value = text.slice(text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1);
    }
    switch (field) {
      case 'event':
        type = value;
        break;
      case 'data':
        data += value + '\n';
        break;
      case 'id':
        // "If the field value does not contain U+0000 NULL, then set the last event ID buffer to the field value."
        if (!value.includes('\0')) idBuffer = value;
        break;
      case 'retry':
        // "If the field value consists of only ASCII digits, ... set the event stream's reconnection time."
        if (ASCII_DIGITS.test(value)) handlers.onRetry?.(Number.parseInt(value, 10));
        break;
      default:
      // "Otherwise: The field is ignored."
    }
  };

  const text = (chunk: string): void => {
    if (chunk === '') return;
    let position = 0;
    if (skipLF) {
      skipLF = false;
      if (chunk.charCodeAt(0) === LF) position = 1;
    }
    // §9.2.5: a line ends with CRLF, a lone LF or a lone CR.
    let lf = chunk.indexOf('\n', position);
    let cr = chunk.indexOf('\r', position);
    for (;;) {
      if (lf !== -1 && lf < position) lf = chunk.indexOf('\n', position);
      if (cr !== -1 && cr < position) cr = chunk.indexOf('\r', position);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      const piece = chunk.slice(position, end);
      const whole = pending === '' ? piece : pending + piece;
      pending = '';
      position = end + 1;
      if (end === cr) {
        if (position === chunk.length) skipLF = true;
        else if (chunk.charCodeAt(position) === LF) position++;
      }
      line(whole);
    }
    if (position < chunk.length) pending += chunk.slice(position);
  };

  return {
    feed(bytes) {
      text(decoder.decode(bytes, { stream: true }));
    },
    reset() {
      // §9.2.6: "Once the end of the file is reached, any pending data must be discarded."
      decoder = new Decoder('utf-8');
      pending = '';
      skipLF = false;
      data = '';
      type = '';
      idBuffer = lastId;
    },
    get lastEventId() {
      return lastId;
    },
  };
}
