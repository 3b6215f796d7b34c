// Pure pieces: the SSE parser, backoff, endpoint URLs, token estimates, errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  backoffDelay,
  countChars,
  DEFAULT_RECONNECT,
  estimateTokens,
  formatStats,
  gatewayEndpoints,
  SseParser,
  TokenwireClient,
  TokenwireError,
} from '../src/index.js';
import { fromHttpError } from '../src/errors.js';

const bytes = (text) => new TextEncoder().encode(text);

/** Feeds `data` in the given pieces and returns every event. */
function parse(pieces) {
  const parser = new SseParser();
  const events = pieces.flatMap((p) => parser.push(p));
  return events.concat(parser.end());
}

describe('SseParser', () => {
  const STREAM =
    '\uFEFFid: 0\nevent: start\ndata: {"type":"start","id":"a","seq":0}\n\n' +
    ': keep-alive\n\n' +
    'id: 1\r\nevent: chunk\r\ndata: {"type":"chunk","content":"héllo 🌍"}\r\n\r\n' +
    'event: chunk\rdata: first\rdata:second\r\r' +
    'data\n\n' +
    'retry: 1500\nfoo: bar\nid: 7\ndata: tail\n\n' +
    'data: never dispatched';
  const EXPECTED = [
    { type: 'start', data: '{"type":"start","id":"a","seq":0}', id: '0' },
    { type: 'chunk', data: '{"type":"chunk","content":"héllo 🌍"}', id: '1' },
    { type: 'chunk', data: 'first\nsecond', id: '1' },
    { type: 'message', data: '', id: '1' },
    { type: 'message', data: 'tail', id: '7' },
  ];

  test('whole input', () => {
    assert.deepEqual(parse([bytes(STREAM)]), EXPECTED);
  });

  test('one byte at a time (multi-byte characters and CRLF split across reads)', () => {
    const all = bytes(STREAM);
    assert.deepEqual(parse(Array.from(all, (b) => Uint8Array.of(b))), EXPECTED);
  });

  test('random splits give the same events', () => {
    const all = bytes(STREAM);
    for (let round = 0; round < 200; round++) {
      const pieces = [];
      for (let i = 0; i < all.length; ) {
        const n = 1 + Math.floor(Math.random() * 12);
        pieces.push(all.slice(i, i + n));
        i += n;
      }
      assert.deepEqual(parse(pieces), EXPECTED);
    }
  });

  test('retry and the last event id are kept', () => {
    const parser = new SseParser();
    parser.push('retry: 1500\nid: 9\ndata: x\n\n');
    assert.equal(parser.retry, 1500);
    assert.equal(parser.lastEventId, '9');
  });
});

describe('backoff', () => {
  const policy = { ...DEFAULT_RECONNECT };
  test('grows exponentially up to maxDelayMs', () => {
    const top = (n) => backoffDelay(n, policy, () => 0);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(top), [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
  });

  test('jitter takes up to that fraction off', () => {
    assert.equal(backoffDelay(3, policy, () => 0.999999), 500);
    assert.equal(backoffDelay(3, { ...policy, jitter: 1 }, () => 0.5), 500);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, policy);
      assert.ok(d >= 250 && d <= 500);
    }
  });

  test('bad reconnect options are refused', () => {
    assert.throws(() => new TokenwireClient('http://x', { reconnect: { factor: -1 }, WebSocket: class {} }), TypeError);
  });
});

describe('gatewayEndpoints', () => {
  const cases = [
    ['http://127.0.0.1:8000', 'http://127.0.0.1:8000', 'ws://127.0.0.1:8000/v1/ws'],
    ['http://127.0.0.1:8000/', 'http://127.0.0.1:8000', 'ws://127.0.0.1:8000/v1/ws'],
    ['https://gw.example.com', 'https://gw.example.com', 'wss://gw.example.com/v1/ws'],
    ['ws://127.0.0.1:8000/v1/ws', 'http://127.0.0.1:8000', 'ws://127.0.0.1:8000/v1/ws'],
    ['wss://gw.example.com/llm/v1/ws/', 'https://gw.example.com/llm', 'wss://gw.example.com/llm/v1/ws'],
    ['ws://h:1', 'http://h:1', 'ws://h:1/v1/ws'],
  ];
  for (const [url, httpBase, wsUrl] of cases) {
    test(url, () => assert.deepEqual(gatewayEndpoints(url), { httpBase, wsUrl }));
  }

  test('the token goes into the WebSocket query, encoded', () => {
    assert.equal(gatewayEndpoints('http://h', 'a b&c').wsUrl, 'ws://h/v1/ws?token=a%20b%26c');
  });

  test('other schemes are refused', () => {
    assert.throws(() => gatewayEndpoints('ftp://h'), TypeError);
  });
});

describe('stats helpers', () => {
  test('characters are code points, tokens ceil(chars / 4)', () => {
    assert.equal(countChars('héllo 🌍'), 7);
    assert.equal(estimateTokens(0), 0);
    assert.equal(estimateTokens(9), 3);
    assert.equal(formatStats({ chunks: 1, tokens: 12, tokensPerSecond: 85.26, ttftMs: 211.6, elapsedMs: 400 }), '12 tokens · 85.3 tok/s · TTFT 212 ms');
  });
});

describe('TokenwireError', () => {
  test('from an HTTP error body', () => {
    const e = fromHttpError(429, { error: { code: 'upstream_rate_limited', message: 'slow down', retryable: true, retry_after_s: 2.5 } }, '3', 's1');
    assert.ok(e instanceof TokenwireError && e instanceof Error);
    assert.deepEqual([e.code, e.message, e.retryable, e.retryAfter, e.status, e.streamId], ['upstream_rate_limited', 'slow down', true, 2.5, 429, 's1']);
  });

  test('from a body that is not JSON', () => {
    const e = fromHttpError(502, null, '7', null);
    assert.deepEqual([e.code, e.retryable, e.retryAfter, e.status], ['http_502', true, 7, 502]);
  });
});

describe('options', () => {
  test("'websocket' without any WebSocket implementation is a TypeError", () => {
    const saved = globalThis.WebSocket;
    // @ts-ignore
    delete globalThis.WebSocket;
    try {
      assert.throws(() => new TokenwireClient('http://x', { transport: 'websocket' }), /no WebSocket/);
      assert.equal(new TokenwireClient('http://x').transport, 'sse', "'auto' without WebSocket uses SSE");
    } finally {
      if (saved) globalThis.WebSocket = saved;
    }
  });

  test('an unknown transport is a TypeError', () => {
    assert.throws(() => new TokenwireClient('http://x', /** @type {any} */ ({ transport: 'carrier-pigeon' })), TypeError);
  });
});
