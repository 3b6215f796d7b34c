// Protocol edge cases with a scripted in-memory WebSocket (no gateway): merged chunks, seq gaps,
// routing of refusals by id, connection-level errors, oversized messages, 1008, and a real
// gateway dropping a frame (seq gap detection end to end).
import assert from 'node:assert/strict';
import { after, before, describe, mock, test } from 'node:test';
import { TokenwireClient } from '../src/index.js';
import { startGateway } from './gateway.js';
import { collect, droppingWebSocket, READY, rejection, scriptedWebSocket, tick, waitFor } from './support.js';

/** A client on a scripted socket that has opened and sent `ready`. */
async function scripted(options = {}) {
  const fake = scriptedWebSocket();
  const client = new TokenwireClient('http://gateway.test:8000', { WebSocket: fake.WebSocket, reconnect: false, ...options });
  const ready = client.connect();
  const socket = fake.sockets[0];
  assert.equal(socket.url, 'ws://gateway.test:8000/v1/ws');
  socket.serverOpen();
  await ready;
  return { client, socket, fake };
}

const ack = (id) => ({ type: 'start', id, seq: 0, provider: 'rulebased', model: 'script' });
const done = (id, seq, content) => ({
  type: 'done', id, seq, finish_reason: 'stop', content,
  usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4, estimated: true },
  metrics: { provider: 'rulebased', model: 'script', ttft_ms: 1, duration_ms: 2, tokens_per_second: 3, estimated_cost_usd: 0 },
});

describe('scripted protocol', () => {
  test('a merged chunk is one chunk object with fromSeq', async () => {
    const { client, socket } = await scripted();
    const s = client.stream({ prompt: 'hi' });
    assert.deepEqual(socket.sent, [{ type: 'start', id: 's1', prompt: 'hi' }]);
    socket.serverSend(ack('s1'));
    socket.serverSend({ type: 'chunk', id: 's1', seq: 1, content: 'a ' });
    socket.serverSend({ type: 'chunk', id: 's1', seq: 4, from_seq: 2, content: 'b c d', future_field: true });
    socket.serverSend(done('s1', 5, 'a b c d'));
    const chunks = [];
    for await (const chunk of s) chunks.push(chunk);
    assert.deepEqual(chunks, [{ content: 'a ', seq: 1 }, { content: 'b c d', seq: 4, fromSeq: 2 }]);
    assert.equal((await s.result).content, 'a b c d');
    assert.equal(s.stats.chunks, 2);
    assert.equal(s.stats.tokens, 3);
    client.close();
  });

  test('a seq gap fails the stream with protocol_gap and cancels it on the gateway', async () => {
    const { client, socket } = await scripted();
    const s = client.stream({ id: 'g', prompt: 'hi' });
    socket.serverSend(ack('g'));
    socket.serverSend({ type: 'chunk', id: 'g', seq: 1, content: 'one ' });
    socket.serverSend({ type: 'chunk', id: 'g', seq: 3, content: 'three ' });
    const error = await rejection(s.result);
    assert.equal(error.code, 'protocol_gap');
    assert.equal(error.retryable, true);
    assert.equal(error.streamId, 'g');
    assert.match(error.message, /expected seq 2, got 3/);
    assert.deepEqual(socket.sent.at(-1), { type: 'cancel', id: 'g' });
    // the rest of the abandoned stream is swallowed; its terminal frees the id
    socket.serverSend({ type: 'chunk', id: 'g', seq: 4, content: 'four' });
    socket.serverSend({ ...done('g', 5, 'one two three four'), finish_reason: 'cancelled' });
    const again = client.stream({ id: 'g', prompt: 'again' });
    socket.serverSend(ack('g'));
    socket.serverSend(done('g', 1, ''));
    assert.equal((await again.result).seq, 1);
    assert.equal(s.text, 'one ');
    client.close();
  });

  test('refusals are routed to the oldest unanswered start of their id', async () => {
    const { client, socket } = await scripted();
    const first = client.stream({ id: 'dup', prompt: 'one' });
    const second = client.stream({ id: 'dup', prompt: 'two' });
    socket.serverSend(ack('dup'));
    socket.serverSend({ type: 'chunk', id: 'dup', seq: 1, content: 'hello' });
    socket.serverSend({ type: 'error', id: 'dup', code: 'duplicate_stream', message: 'stream `dup` is already running', retryable: false });
    socket.serverSend(done('dup', 2, 'hello'));
    assert.equal((await rejection(second.result)).code, 'duplicate_stream');
    assert.equal((await first.result).content, 'hello');
    assert.equal(first.status, 'done');
    client.close();
  });

  test('errors without a stream go to client.on("error"); unknown types are ignored', async () => {
    const { client, socket } = await scripted();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    socket.serverSend({ type: 'error', code: 'bad_message', message: 'not valid JSON', retryable: false });
    socket.serverSend({ type: 'error', id: 'nobody', code: 'unknown_stream', message: 'no stream `nobody`', retryable: false });
    socket.serverSend({ type: 'something_new', id: 'x' });
    socket.serverSend({ type: 'pong', ts: 1 });
    socket.serverSend('not json');
    assert.deepEqual(errors.map((e) => [e.code, e.streamId]), [['bad_message', null], ['unknown_stream', 'nobody']]);
    client.close();
  });

  test('a cancel answered with unknown_stream (the start was refused) stays quiet', async () => {
    const { client, socket } = await scripted();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const s = client.stream({ id: 'r', prompt: 'hi', provider: 'nope' });
    s.cancel();
    assert.deepEqual(socket.sent.at(-1), { type: 'cancel', id: 'r' });
    socket.serverSend({ type: 'error', id: 'r', code: 'unknown_provider', message: 'unknown provider', retryable: false });
    socket.serverSend({ type: 'error', id: 'r', code: 'unknown_stream', message: 'no stream `r`', retryable: false });
    const result = await s.result; // cancelled by the application: resolves as cancelled
    assert.equal(result.finish_reason, 'cancelled');
    assert.equal(result.usage, null);
    assert.deepEqual(errors, []);
    client.close();
  });

  test('a failed stream that is only iterated leaves no unhandled rejection', async () => {
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { client, socket } = await scripted();
      const s = client.stream({ prompt: 'hi' });
      socket.serverSend({ type: 'error', id: 's1', code: 'unknown_provider', message: 'nope', retryable: false });
      await assert.rejects(collect(s), (e) => e.code === 'unknown_provider');
      client.stream({ prompt: 'never looked at' }); // neither iterated nor awaited
      client.close();
      await tick(20);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a start larger than limits.max_message_bytes fails locally', async () => {
    const fake = scriptedWebSocket();
    const client = new TokenwireClient('http://gateway.test', { WebSocket: fake.WebSocket });
    const ready = client.connect();
    fake.sockets[0].serverOpen({ ...READY, limits: { max_streams: 16, max_message_bytes: 1024 } });
    await ready;
    const s = client.stream({ prompt: 'x'.repeat(2000) });
    const error = await rejection(s.result);
    assert.equal(error.code, 'bad_message');
    assert.match(error.message, /at most 1024/);
    assert.deepEqual(fake.sockets[0].sent, []);
    client.close();
  });

  test('too_many_streams although the client kept to the limit: queued again once, then sent when a stream ends', async () => {
    const { client, socket } = await scripted(); // limits.max_streams: 16
    const starts = () => socket.sent.filter((m) => m.type === 'start').map((m) => m.id);
    const refuse = (id) =>
      socket.serverSend({ type: 'error', id, code: 'too_many_streams', message: 'at most 1 streams may run on one connection', retryable: true });
    const [, b, c] = ['a', 'b', 'c'].map((id) => client.stream({ id, prompt: id }));
    socket.serverSend(ack('a'));
    refuse('b');
    refuse('c');
    assert.deepEqual([b.queued, b.status, c.queued, c.status], [true, 'queued', true, 'queued'], 'not failed');
    const d = client.stream({ id: 'd', prompt: 'd' });
    assert.equal(d.queued, true, 'behind the streams queued again');
    assert.deepEqual(starts(), ['a', 'b', 'c'], 'the connection now holds back to the one stream that runs');
    socket.serverSend(done('a', 1, ''));
    assert.deepEqual(starts(), ['a', 'b', 'c', 'b']);
    socket.serverSend(ack('b'));
    socket.serverSend(done('b', 1, ''));
    assert.deepEqual(starts(), ['a', 'b', 'c', 'b', 'c']);
    refuse('c'); // a second time: the typed error
    const error = await rejection(c.result);
    assert.equal(error.code, 'too_many_streams');
    assert.equal(error.retryable, true);
    assert.equal(error.streamId, 'c');
    assert.equal(c.queued, false);
    assert.deepEqual(starts(), ['a', 'b', 'c', 'b', 'c', 'd']);
    assert.equal(b.status, 'done');
    client.close();
  });

  test('callbacks run in order and a throwing callback does not break the client', async () => {
    const { client, socket } = await scripted();
    const log = [];
    const thrown = [];
    const onUncaught = (e) => thrown.push(e);
    process.prependListener('uncaughtException', onUncaught);
    const listeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
    for (const l of listeners) process.removeListener('uncaughtException', l);
    try {
      const s = client.stream({ prompt: 'hi' }, {
        onStart: () => log.push('start'),
        onChunk: (c) => {
          log.push(`chunk ${c.seq}`);
          throw new Error('render failed');
        },
        onDone: (d) => log.push(`done ${d.seq}`),
      });
      socket.serverSend(ack('s1'));
      socket.serverSend({ type: 'chunk', id: 's1', seq: 1, content: 'a' });
      socket.serverSend({ type: 'chunk', id: 's1', seq: 2, content: 'b' });
      socket.serverSend(done('s1', 3, 'ab'));
      await s.result;
      await tick();
      assert.deepEqual(log, ['start', 'chunk 1', 'chunk 2', 'done 3']);
      assert.equal(thrown.length, 2);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
      client.close();
    }
  });

  test('1008 fails queued and running streams with unauthorized and does not reconnect', async () => {
    const fake = scriptedWebSocket();
    const client = new TokenwireClient('https://gateway.test', { WebSocket: fake.WebSocket, token: 't' });
    const s = client.stream({ prompt: 'hi' });
    assert.equal(fake.sockets[0].url, 'wss://gateway.test/v1/ws?token=t');
    fake.sockets[0].serverOpen(null); // accepted, no ready…
    fake.sockets[0].serverClose(1008, 'a valid API token is required'); // …then closed
    const error = await rejection(s.result);
    assert.equal(error.code, 'unauthorized');
    assert.equal(error.message, 'a valid API token is required');
    await tick(300);
    assert.equal(fake.sockets.length, 1);
    assert.equal(client.state, 'idle');
    client.close();
  });

  test('reconnect gives up after maxAttempts; queued streams then fail', async () => {
    const fake = scriptedWebSocket();
    const client = new TokenwireClient('http://gateway.test', {
      WebSocket: fake.WebSocket,
      transport: 'websocket',
      reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 },
    });
    const s = client.stream({ prompt: 'hi' });
    fake.sockets[0].serverClose(1006);
    await waitFor(() => fake.sockets.length === 2);
    assert.equal(s.status, 'queued', 'queued streams wait for the next connection');
    fake.sockets[1].serverClose(1006);
    await waitFor(() => fake.sockets.length === 3);
    fake.sockets[2].serverClose(1006);
    const error = await rejection(s.result);
    assert.equal(error.code, 'connection_lost');
    assert.equal(client.reconnects, 2);
    assert.equal(client.state, 'idle');
    client.close();
  });
});

describe('injected fetch (SSE)', () => {
  /** A fetch answering GET /healthz, and POST /v1/streams with `events(id)` as an event
   * stream in 3-byte reads. */
  function fakeFetch(events, calls) {
    return async (url, init) => {
      if (url.endsWith('/healthz')) return new Response('{"status":"ok"}', { status: 200 });
      const body = JSON.parse(init.body);
      calls.push({ url, method: init.method, headers: init.headers, body });
      const bytes = new TextEncoder().encode(events(body.id));
      let at = 0;
      const stream = new ReadableStream({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(at, (at += 3)));
        },
      });
      return new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    };
  }
  const sse = (msg) => `id: ${msg.seq}\r\nevent: ${msg.type}\r\ndata: ${JSON.stringify(msg)}\r\n\r\n: keep-alive\r\n\r\n`;

  test("a WebSocket that never opens: 'auto' gives up after 10 s and uses SSE", async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const fake = scriptedWebSocket();
      const calls = [];
      const events = (id) => [ack(id), { type: 'chunk', id, seq: 1, content: 'héllo 🌍' }, done(id, 2, 'héllo 🌍')].map(sse).join('');
      const client = new TokenwireClient('https://gw.test/base/', { WebSocket: fake.WebSocket, token: 'tok', fetch: fakeFetch(events, calls) });
      const s = client.stream({ prompt: 'hi' });
      assert.equal(s.id, 's1');
      assert.equal(client.state, 'connecting');
      mock.timers.tick(10_000);
      mock.timers.reset();
      await new Promise((resolve) => setImmediate(resolve)); // the /healthz probe answers
      assert.equal(client.transport, 'sse');
      assert.match(s.id, /^s1-[0-9a-f]+$/, 'renamed with the client tag: it goes over HTTP');
      const result = await s.result;
      assert.equal(result.content, 'héllo 🌍');
      assert.equal(s.text, 'héllo 🌍');
      assert.equal(calls.length, 1);
      assert.equal(calls[0].url, 'https://gw.test/base/v1/streams');
      assert.equal(calls[0].method, 'POST');
      assert.equal(calls[0].headers.authorization, 'Bearer tok');
      assert.deepEqual(calls[0].body, { prompt: 'hi', id: s.id });
      assert.equal(fake.sockets.length, 1);
      client.close();
    } finally {
      mock.timers.reset();
    }
  });
});

test("'auto' keeps reconnecting over WebSocket while the gateway does not answer HTTP either", async () => {
  const fake = scriptedWebSocket();
  const probes = [];
  const down = async (url) => {
    probes.push(url);
    throw new TypeError('fetch failed');
  };
  const client = new TokenwireClient('http://gw.test', { WebSocket: fake.WebSocket, fetch: down, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
  client.connect();
  fake.sockets[0].serverClose(1006);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(probes.slice(0, 1), ['http://gw.test/healthz']);
  assert.notEqual(client.transport, 'sse');
  assert.ok(fake.sockets.length >= 2, 'another WebSocket was tried');
  client.close();
});

describe('seq gap from a real gateway', () => {
  /** @type {import('./gateway.js').Gateway} */
  let gw;
  before(async () => {
    gw = await startGateway({ config: { providers: { rulebased: { chunk_delay_ms: 20 } } } });
  });
  after(() => gw?.stop());

  test('a lost frame is detected, and the stream is cancelled upstream', async () => {
    const Dropping = droppingWebSocket((msg) => msg.type === 'chunk' && msg.seq === 2);
    const client = new TokenwireClient(gw.url, { WebSocket: Dropping });
    try {
      const s = client.stream({ brief: { topic: 'Gaps' }, plan: { target_duration_seconds: 600 } });
      await assert.rejects(collect(s), (e) => e.code === 'protocol_gap' && /expected seq 2, got 3/.test(e.message));
      await waitFor(async () => (await (await fetch(`${gw.url}/healthz`)).json()).active_streams === 0, 5000, 'cancel upstream');
      // the connection is still usable
      assert.equal((await client.stream({ prompt: 'ok', options: { max_tokens: 5 } }).result).finish_reason, 'length');
    } finally {
      client.close();
    }
  });
});
