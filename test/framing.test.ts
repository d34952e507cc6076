/**
 * The wire format (src/protocol/framing.ts), checked against a spec-compliant
 * parser (eventsource-parser) rather than against itself.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { fieldValueProblem, frameComment, frameEvent, frameRetry, splitDataLines, type WireEvent } from '../src/protocol/framing.js';

interface Parsed {
  events: EventSourceMessage[];
  comments: string[];
  retries: number[];
  errors: Error[];
}

/** Feeds `stream` to a fresh parser in the given chunks (the whole string when none). */
function parse(stream: string, cuts: readonly number[] = []): Parsed {
  const parsed: Parsed = { events: [], comments: [], retries: [], errors: [] };
  const parser = createParser({
    onEvent: (event) => parsed.events.push(event),
    onComment: (comment) => parsed.comments.push(comment),
    onRetry: (retry) => parsed.retries.push(retry),
    onError: (error) => parsed.errors.push(error),
  });
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= start || cut >= stream.length) continue;
    parser.feed(stream.slice(start, cut));
    start = cut;
  }
  parser.feed(stream.slice(start));
  return parsed;
}

/** What a spec-compliant client must see for an event we framed. */
function expected(event: WireEvent): EventSourceMessage {
  const type = event.event === undefined || event.event === '' || event.event === 'message' ? undefined : event.event;
  return { id: event.id, event: type, data: event.data.replace(/\r\n|\r|\n/g, '\n') };
}

const codePoint = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
const nastyInData = fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\r\n', ' ', '  ', '\0', ':', '\uFEFF', '\u2028', '\u0085', '😀', '👩‍👩‍👧', 'é', 'data: x', 'id: 9', 'event: x', 'retry: 1', '\t');
/** Any string, weighted towards line breaks, leading spaces, NUL, astral characters. */
const anyData = fc.oneof(
  fc.string({ unit: fc.oneof(nastyInData, codePoint), maxLength: 40 }),
  fc.constantFrom('', '\r', '\n', '\r\n', 'a\r', '\ra', 'a\n', '\na', ' lead', '\n\n', '\r\r', '\r\n\r\n', ' ', '\0', '😀\r😀'),
);

const nastyInField = fc.constantFrom(' ', '  ', ':', '\t', '\uFEFF', '\u2028', '😀', 'é', 'data: x', 'message');
const safeCodePoint = codePoint.filter((c) => !/[\r\n\0]/.test(c));
/** Any string a field may hold: no CR, LF or NUL. */
const fieldValue = fc.string({ unit: fc.oneof(nastyInField, safeCodePoint), maxLength: 20 });

const wireEvent: fc.Arbitrary<WireEvent> = fc.record({
  id: fc.option(fieldValue, { nil: undefined }),
  event: fc.option(fc.oneof(fieldValue, fc.constant('message')), { nil: undefined }),
  data: anyData,
});

/** Random places to cut a stream of up to a few thousand characters. */
const cuts = fc.array(fc.nat({ max: 4000 }), { maxLength: 12 });

describe('frameEvent round-trips through a spec-compliant parser', () => {
  test('any id, event and data come back as framed (CR and CRLF in data become LF)', () => {
    fc.assert(
      fc.property(wireEvent, (event) => {
        const parsed = parse(frameEvent(event));
        assert.deepEqual(parsed.events, [expected(event)]);
        assert.deepEqual(parsed.errors, []);
        assert.deepEqual(parsed.comments, []);
      }),
      { numRuns: 500 },
    );
  });

  test('the same holds when the bytes arrive in arbitrary chunks', () => {
    fc.assert(
      fc.property(wireEvent, cuts, (event, at) => {
        const frame = frameEvent(event);
        assert.deepEqual(parse(frame, at).events, [expected(event)]);
      }),
      { numRuns: 500 },
    );
  });

  test('a stream of many events gives back each event, in order, however it is chunked', () => {
    fc.assert(
      fc.property(fc.array(wireEvent, { minLength: 1, maxLength: 8 }), cuts, (events, at) => {
        const stream = events.map(frameEvent).join('');
        assert.deepEqual(parse(stream, at).events, events.map(expected));
      }),
      { numRuns: 300 },
    );
  });

  test('a frame is LF-only, has one field per line and exactly one blank line, at its end', () => {
    fc.assert(
      fc.property(wireEvent, (event) => {
        const frame = frameEvent(event);
        assert.ok(!frame.includes('\r'), 'no CR in a frame');
        assert.ok(frame.endsWith('\n\n'));
        assert.equal(frame.indexOf('\n\n'), frame.length - 2, 'nothing is dispatched before the end of the frame');
        for (const line of frame.slice(0, -2).split('\n')) assert.match(line, /^(id|event|data): /);
      }),
      { numRuns: 300 },
    );
  });

  test('data is split the way the client rejoins it', () => {
    fc.assert(
      fc.property(anyData, (data) => {
        const lines = splitDataLines(data);
        assert.equal(lines.join('\n'), data.replace(/\r\n|\r|\n/g, '\n'));
        for (const line of lines) assert.ok(!/[\r\n]/.test(line));
      }),
    );
  });
});

describe('frameEvent exact bytes', () => {
  test('the documented example', () => {
    assert.equal(frameEvent({ id: '7', event: 'greeting', data: 'hello\nworld' }), 'id: 7\nevent: greeting\ndata: hello\ndata: world\n\n');
  });

  test('data only', () => {
    assert.equal(frameEvent({ data: 'hello' }), 'data: hello\n\n');
  });

  test('empty data is one empty data line, and is still dispatched', () => {
    assert.equal(frameEvent({ data: '' }), 'data: \n\n');
    assert.deepEqual(parse(frameEvent({ data: '' })).events, [{ id: undefined, event: undefined, data: '' }]);
  });

  test('event type "message" and undefined write no event line', () => {
    assert.equal(frameEvent({ event: 'message', data: 'x' }), 'data: x\n\n');
    assert.equal(frameEvent({ event: undefined, data: 'x' }), 'data: x\n\n');
    assert.equal(frameEvent({ id: '1', event: 'message', data: 'x' }), 'id: 1\ndata: x\n\n');
  });

  test('a value that begins with a space survives (one space after the colon)', () => {
    const event = { id: ' 1', event: ' spaced', data: '  two spaces' };
    assert.equal(frameEvent(event), 'id:  1\nevent:  spaced\ndata:   two spaces\n\n');
    assert.deepEqual(parse(frameEvent(event)).events, [{ id: ' 1', event: ' spaced', data: '  two spaces' }]);
  });

  test('CRLF, lone CR and LF all split data, including at the ends', () => {
    assert.equal(frameEvent({ data: 'a\r\nb\rc\nd' }), 'data: a\ndata: b\ndata: c\ndata: d\n\n');
    assert.equal(frameEvent({ data: 'a\r' }), 'data: a\ndata: \n\n');
    assert.equal(frameEvent({ data: '\ra' }), 'data: \ndata: a\n\n');
    assert.equal(frameEvent({ data: '\r\n' }), 'data: \ndata: \n\n');
    assert.equal(frameEvent({ data: '\n\r' }), 'data: \ndata: \ndata: \n\n');
  });

  test('NUL and astral characters in data pass through untouched', () => {
    assert.equal(frameEvent({ data: 'a\0b😀' }), 'data: a\0b😀\n\n');
    assert.deepEqual(parse(frameEvent({ data: 'a\0b😀' })).events, [{ id: undefined, event: undefined, data: 'a\0b😀' }]);
  });
});

describe('field injection is impossible', () => {
  const forbidden = ['\r', '\n', '\0', '\r\n', '1\nevent: evil', '1\rdata: evil', 'x\0', '\nretry: 1'];

  for (const value of forbidden) {
    test(`id ${JSON.stringify(value)} throws TypeError`, () => {
      assert.throws(() => frameEvent({ id: value, data: 'x' }), TypeError);
    });
    test(`event ${JSON.stringify(value)} throws TypeError`, () => {
      assert.throws(() => frameEvent({ event: value, data: 'x' }), TypeError);
    });
  }

  test('any id or event holding CR, LF or NUL is refused; any without is accepted', () => {
    const withBreak = fc
      .tuple(fieldValue, fc.constantFrom('\r', '\n', '\0', '\r\n'), fieldValue)
      .map(([before, bad, after]) => before + bad + after);
    fc.assert(
      fc.property(withBreak, fieldValue, (bad, good) => {
        assert.throws(() => frameEvent({ id: bad, data: 'x' }), TypeError);
        assert.throws(() => frameEvent({ id: good, event: bad, data: 'x' }), TypeError);
        assert.notEqual(fieldValueProblem(bad), undefined);
        assert.equal(fieldValueProblem(good), undefined);
        assert.doesNotThrow(() => frameEvent({ id: good, event: good, data: bad }));
      }),
    );
  });

  test('the error names the field', () => {
    assert.throws(() => frameEvent({ id: 'a\nb', data: 'x' }), (error: Error) => error instanceof TypeError && /\bid\b/.test(error.message));
    assert.throws(() => frameEvent({ event: 'a\nb', data: 'x' }), (error: Error) => error instanceof TypeError && /\bevent\b/.test(error.message));
  });
});

describe('frameRetry', () => {
  test('writes a retry field the client accepts', () => {
    assert.equal(frameRetry(3000), 'retry: 3000\n');
    assert.equal(frameRetry(0), 'retry: 0\n');
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 31 - 1 }), (ms) => {
        const parsed = parse(frameRetry(ms) + '\n');
        assert.deepEqual(parsed.retries, [ms]);
        assert.deepEqual(parsed.events, []);
        assert.deepEqual(parsed.errors, []);
      }),
    );
  });

  for (const bad of [-1, -1000, 1.5, 0.1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53]) {
    test(`rejects ${bad}`, () => {
      assert.throws(() => frameRetry(bad), RangeError);
    });
  }

  test('rejects any negative or fractional number', () => {
    const bad = fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)),
    );
    fc.assert(fc.property(bad, (n) => void assert.throws(() => frameRetry(n), RangeError)));
  });
});

describe('frameComment', () => {
  test('exact bytes', () => {
    assert.equal(frameComment(), ':\n\n');
    assert.equal(frameComment(''), ':\n\n');
    assert.equal(frameComment('heartbeat'), ': heartbeat\n\n');
    assert.equal(frameComment('a\nb'), ': a\n: b\n\n');
    assert.equal(frameComment('a\r\nb\rc'), ': a\n: b\n: c\n\n');
  });

  test('never dispatches an event, whatever the text; the parser sees each line as a comment', () => {
    fc.assert(
      fc.property(anyData, cuts, (text, at) => {
        const frame = frameComment(text);
        const parsed = parse(frame, at);
        assert.deepEqual(parsed.events, []);
        assert.deepEqual(parsed.errors, []);
        assert.deepEqual(parsed.comments, splitDataLines(text));
        for (const line of frame.slice(0, -2).split('\n')) assert.ok(line.startsWith(':'), `${JSON.stringify(line)} is a comment`);
      }),
      { numRuns: 500 },
    );
  });

  test('comments interleaved with events change none of them', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(wireEvent, anyData), { minLength: 1, maxLength: 6 }), cuts, (pairs, at) => {
        const stream = pairs.map(([event, comment]) => frameComment(comment) + frameEvent(event)).join('') + frameComment('bye');
        assert.deepEqual(
          parse(stream, at).events,
          pairs.map(([event]) => expected(event)),
        );
      }),
      { numRuns: 300 },
    );
  });
});
