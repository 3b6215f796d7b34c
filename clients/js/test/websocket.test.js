// The WebSocket transport against a real gateway: multiplexing, queueing (until ready, and beyond
// limits.max_streams), cancel, stats, errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { countChars, TokenwireClient, TokenwireError } from '../src/index.js';
import { startGateway } from './gateway.js';
import { collect, countingWebSocket, rejection, streamCountingWebSocket, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} */
let gw;
/** @type {import('./gateway.js').Gateway} chunks every 40 ms: time to cancel mid-stream */
let slow;
const clients = [];
const client = (url, options = {}) => {
  const c = new TokenwireClient(url, { WebSocket, ...options });
  clients.push(c);
  return c;
};

before(async () => {
  [gw, slow] = await Promise.all([
    startGateway(),
    startGateway({ config: { providers: { rulebased: { chunk_delay_ms: 40 } } } }),
  ]);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all([gw?.stop(), slow?.stop()]);
});

const BRIEF = { brief: { topic: 'How solar panels work', audience: 'high-school students' }, plan: { target_duration_seconds: 30, pacing: 'fast' } };
const PROMPT = { prompt: 'Why is the sky blue?', options: { max_tokens: 60 } };
const MESSAGES = { agent: 'assistant', messages: [{ role: 'user', content: 'Give me three tips for writing clear docs.' }] };
const LONG = { brief: { topic: 'A very long script' }, plan: { target_duration_seconds: 600 } };

describe('multiplexing', () => {
  test('three concurrent streams (brief, prompt, messages) share one socket', async () => {
    const counting = countingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const order = [];
    const streams = [BRIEF, PROMPT, MESSAGES].map((request) =>
      c.stream(request, { onChunk: (chunk, s) => order.push(s.id) }),
    );
    assert.deepEqual(streams.map((s) => s.id), ['s1', 's2', 's3']);
    const [texts, results] = await Promise.all([
      Promise.all(streams.map(collect)),
      Promise.all(streams.map((s) => s.result)),
    ]);
    for (const [i, s] of streams.entries()) {
      assert.equal(results[i].type, 'done');
      assert.equal(results[i].id, s.id);
      assert.equal(results[i].content, texts[i]);
      assert.ok(texts[i].length > 0);
      assert.equal(s.text, texts[i]);
      assert.equal(s.status, 'done');
      assert.equal(s.provider, 'rulebased');
      assert.equal(s.model, 'script');
    }
    assert.equal(results[1].finish_reason, 'length');
    assert.match(texts[0], /^Title: How solar panels work/);
    assert.match(texts[1], /Why is the sky blue\?/);
    assert.match(texts[2], /three tips for writing clear docs/);
    // the streams interleaved on the one socket
    const firstEnd = Math.min(...streams.map((s) => order.lastIndexOf(s.id)));
    assert.ok(streams.some((s) => order.indexOf(s.id) < firstEnd && order.lastIndexOf(s.id) > firstEnd));
    assert.equal(counting.record.count, 1);
    assert.deepEqual(counting.record.sent.map((m) => m.type), ['start', 'start', 'start']);
  });

  test('the socket opens lazily, and streams started before it is ready are queued', async () => {
    const counting = countingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const states = [];
    c.on('state', (s) => states.push(s));
    assert.equal(c.state, 'idle');
    assert.equal(counting.record.count, 0);
    const a = c.stream({ prompt: 'first', options: { max_tokens: 10 } });
    const b = c.stream({ prompt: 'second', options: { max_tokens: 10 } });
    assert.equal(c.state, 'connecting');
    assert.equal(a.status, 'queued');
    assert.equal(counting.record.sent.length, 0);
    const [ra, rb] = await Promise.all([a.result, b.result]);
    assert.match(ra.content, /first/);
    assert.match(rb.content, /second/);
    assert.deepEqual(states, ['connecting', 'open']);
    assert.equal(counting.record.count, 1);
    const ready = await c.ready;
    assert.equal(ready.type, 'ready');
    assert.equal(ready.protocol, 1);
    assert.ok(c.providers.some((p) => p.name === 'rulebased' && p.configured));
  });

  test('connect() opens the socket before any stream; ids follow the client counter', async () => {
    const c = client(gw.url);
    const seen = [];
    c.on('ready', (r) => seen.push(r));
    const ready = await c.connect();
    assert.equal(c.state, 'open');
    assert.equal(c.transport, 'websocket');
    assert.equal(seen[0], ready);
    assert.ok(ready.limits.max_streams >= 1);
    const s = c.stream({ id: 'mine.1', prompt: 'hi', options: { max_tokens: 5 } });
    assert.equal(s.id, 'mine.1');
    assert.equal((await s.result).id, 'mine.1');
  });

  test('a ws:// URL ending in /v1/ws works too', async () => {
    const c = client(gw.wsUrl);
    const done = await c.stream({ prompt: 'hi', options: { max_tokens: 5 } }).result;
    assert.equal(done.finish_reason, 'length');
  });
});

describe('more streams than limits.max_streams', () => {
  test('20 at once: 16 run on the socket, the rest wait for a free slot and start in order', async () => {
    const counting = streamCountingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const ready = await c.connect();
    assert.equal(ready.limits.max_streams, 16, "the gateway's default");
    const streams = Array.from({ length: 20 }, (_, i) => c.stream({ prompt: `Question ${i + 1}`, options: { max_tokens: 30 } }));
    const held = streams.map((s) => s.queued);
    const sentAtOnce = counting.record.started.slice();
    assert.ok(streams.every((s) => s.status === 'queued'), 'queued until the ack');
    const settled = await Promise.allSettled(streams.map((s) => s.result));
    assert.deepEqual(settled.map((r) => r.status === 'rejected' ? r.reason.code : r.value.finish_reason), Array(20).fill('length'));
    for (const [i, s] of streams.entries()) assert.match(s.text, new RegExp(`Question ${i + 1}\\b`));
    assert.deepEqual(held, [...Array(16).fill(false), ...Array(4).fill(true)], 'the last four waited for a slot');
    assert.deepEqual(sentAtOnce, streams.slice(0, 16).map((s) => s.id));
    assert.equal(counting.record.peak, 16, 'never more than limits.max_streams on the socket');
    assert.deepEqual(counting.record.started, streams.map((s) => s.id), 'FIFO: in the order they were asked for');
    assert.ok(streams.every((s) => !s.queued && s.status === 'done'));
  });

  test('cancelled while it waits for a slot: nothing is sent for it, it ends cancelled, the next one moves up', async () => {
    const counting = streamCountingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    await c.connect();
    const running = Array.from({ length: 16 }, (_, i) => c.stream({ prompt: `running ${i}`, options: { max_tokens: 10 } }));
    const onDone = [];
    const waiting = c.stream({ prompt: 'never sent' }, { onDone: (d) => onDone.push(d) });
    const next = c.stream({ prompt: 'next', options: { max_tokens: 10 } });
    assert.equal(waiting.queued, true);
    waiting.cancel();
    const cancelled = { type: 'done', id: waiting.id, seq: 0, finish_reason: 'cancelled', content: '', usage: null, metrics: null };
    assert.equal(waiting.status, 'cancelled');
    assert.equal(waiting.queued, false);
    assert.deepEqual(onDone, [cancelled]);
    assert.deepEqual(await waiting.result, cancelled);
    assert.equal(next.queued, true);
    await Promise.all([...running, next].map((s) => s.result));
    assert.deepEqual(counting.record.started, [...running, next].map((s) => s.id), 'no start for the cancelled one');
    assert.equal(counting.record.peak, 16);
  });
});

describe('stats and callbacks', () => {
  test('stats are live while streaming and use usage.completion_tokens at done', async () => {
    const c = client(gw.url);
    const events = [];
    const s = c.stream(BRIEF, {
      onStart: (ack) => events.push(['start', ack.seq, ack.provider]),
      onChunk: (chunk, stream) => {
        events.push(['chunk', chunk.seq]);
        const stats = stream.stats;
        assert.equal(stats.tokens, Math.ceil(countChars(stream.text) / 4));
        assert.ok(stats.chunks > 0);
        assert.ok(stats.ttftMs !== null && stats.ttftMs >= 0);
      },
      onDone: (done) => events.push(['done', done.seq]),
      onError: (e) => events.push(['error', e.code]),
    });
    const done = await s.result;
    const stats = s.stats;
    assert.ok(stats.chunks > 0);
    assert.equal(stats.chunks, events.filter((e) => e[0] === 'chunk').length);
    assert.ok(stats.ttftMs >= 0);
    assert.ok(stats.elapsedMs >= stats.ttftMs);
    assert.equal(stats.tokens, done.usage.completion_tokens);
    assert.ok(stats.tokensPerSecond === null || stats.tokensPerSecond > 0);
    assert.deepEqual(s.stats, stats, 'frozen once the stream ended');
    // callbacks in protocol order, seq without gaps
    assert.deepEqual(events[0], ['start', 0, 'rulebased']);
    assert.deepEqual(events.at(-1), ['done', done.seq]);
    const seqs = events.slice(1, -1).map((e) => e[1]);
    assert.equal(seqs.at(-1), done.seq - 1);
  });
});

describe('cancel', () => {
  test('AbortSignal: cancel after the first chunk; result has the text so far', async () => {
    const c = client(slow.url);
    const controller = new AbortController();
    const s = c.stream(LONG, { signal: controller.signal, onChunk: () => controller.abort() });
    const text = await collect(s); // the iterator ends normally after a cancel
    const done = await s.result;
    assert.equal(done.finish_reason, 'cancelled');
    assert.ok(done.content.length > 0);
    assert.equal(done.content, text);
    assert.equal(s.text, done.content);
    assert.equal(s.status, 'cancelled');
    assert.ok(done.usage.completion_tokens > 0, 'usage so far, from the gateway');
  });

  test('stream.cancel(): after two chunks; other streams on the socket go on', async () => {
    const c = client(slow.url);
    let chunks = 0;
    const s = c.stream(LONG, { onChunk: (_, st) => ++chunks === 2 && st.cancel() });
    const other = c.stream({ prompt: 'keep going', options: { max_tokens: 20 } });
    const done = await s.result;
    assert.equal(done.finish_reason, 'cancelled');
    assert.equal(done.content, s.text);
    assert.ok(s.stats.chunks >= 2);
    s.cancel(); // a no-op once ended
    const rest = await other.result;
    assert.equal(rest.finish_reason, 'length');
  });

  test('cancel while queued: nothing is sent, result is a cancelled done', async () => {
    const counting = countingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const s = c.stream({ prompt: 'never sent' });
    const kept = c.stream({ prompt: 'sent', options: { max_tokens: 5 } });
    s.cancel();
    const done = await s.result;
    assert.deepEqual(done, { type: 'done', id: s.id, seq: 0, finish_reason: 'cancelled', content: '', usage: null, metrics: null });
    await kept.result;
    assert.deepEqual(counting.record.sent.map((m) => m.id), [kept.id]);
  });

  test('a signal already aborted: nothing is sent, result resolves cancelled', async () => {
    const counting = countingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const onDone = [];
    const s = c.stream({ prompt: 'hi' }, { signal: AbortSignal.abort(), onDone: (d) => onDone.push(d) });
    assert.equal(s.status, 'cancelled');
    const done = await s.result;
    assert.deepEqual(done, { type: 'done', id: s.id, seq: 0, finish_reason: 'cancelled', content: '', usage: null, metrics: null });
    assert.deepEqual(onDone, [done]);
    assert.equal(await collect(s), '');
    assert.equal(c.state, 'idle');
    assert.equal(counting.record.count, 0);
  });
});

describe('refusals', () => {
  test('unknown_provider', async () => {
    const c = client(gw.url);
    const s = c.stream({ prompt: 'hi', provider: 'mistral' });
    const error = await rejection(s.result);
    assert.ok(error instanceof TokenwireError);
    assert.equal(error.code, 'unknown_provider');
    assert.equal(error.retryable, false);
    assert.equal(error.streamId, s.id);
    assert.equal(s.status, 'error');
    assert.equal(s.error, error);
  });

  test('bad_message: the iterator throws the same error', async () => {
    const c = client(gw.url);
    const s = c.stream(/** @type {any} */ ({ id: 'x', prompt: 5 }));
    await assert.rejects(collect(s), (e) => e instanceof TokenwireError && e.code === 'bad_message' && e.streamId === 'x' && /\$\.prompt/.test(e.message));
    const error = await rejection(s.result);
    assert.equal(error.code, 'bad_message');
    assert.equal(error.retryable, false);
  });

  test('an invalid id is refused by the client without sending it', async () => {
    const counting = countingWebSocket();
    const c = client(gw.url, { WebSocket: counting.WebSocket });
    const error = await rejection(c.stream({ id: 'not valid!', prompt: 'hi' }).result);
    assert.equal(error.code, 'bad_message');
    assert.equal(counting.record.sent.length, 0);
  });

  test('duplicate_stream: the second start is refused, the first goes on', async () => {
    const c = client(slow.url);
    const first = c.stream({ id: 'dup', prompt: 'one', options: { max_tokens: 30 } });
    const second = c.stream({ id: 'dup', prompt: 'two' });
    const error = await rejection(second.result);
    assert.equal(error.code, 'duplicate_stream');
    assert.equal(error.streamId, 'dup');
    assert.equal(error.retryable, false);
    const [text, done] = await Promise.all([collect(first), first.result]);
    assert.equal(done.content, text);
    assert.match(text, /one/);
    // the id is free again once the first stream ended
    const again = await c.stream({ id: 'dup', prompt: 'three', options: { max_tokens: 5 } }).result;
    assert.match(again.content, /three/);
  });

  test('provider_not_configured: openai without a key', async () => {
    const c = client(gw.url);
    await c.connect();
    assert.equal(c.providers.find((p) => p.name === 'openai')?.configured, false);
    const error = await rejection(c.stream({ provider: 'openai', prompt: 'hi' }).result);
    assert.equal(error.code, 'provider_not_configured');
    assert.equal(error.retryable, false);
  });
});
