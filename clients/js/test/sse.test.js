// The SSE transport (fetch + POST /v1/streams) against a real gateway, and the 'auto' fallback.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenwireClient, TokenwireError } from '../src/index.js';
import { startGateway } from './gateway.js';
import { activeStreams, collect, rejection, unreachableWebSocket, waitFor, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} */
let gw;
/** @type {import('./gateway.js').Gateway} */
let slow;
const clients = [];
const client = (url, options = {}) => {
  const c = new TokenwireClient(url, { transport: 'sse', ...options });
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

const BRIEF = { brief: { topic: 'How tides work', tone: 'playful' }, plan: { target_duration_seconds: 20 } };
const LONG = { brief: { topic: 'A very long script' }, plan: { target_duration_seconds: 600 } };

describe('SSE transport', () => {
  test('the same streams and results as over WebSocket', async () => {
    const sse = client(gw.url);
    const ws = client(gw.url, { transport: 'websocket', WebSocket });
    const requests = [BRIEF, { prompt: 'What is backpressure?', options: { max_tokens: 40 } }, { messages: [{ role: 'user', content: 'hi' }] }];
    const overSse = requests.map((r) => sse.stream(r));
    const overWs = requests.map((r) => ws.stream(r));
    const sseTexts = await Promise.all(overSse.map(collect));
    const sseDone = await Promise.all(overSse.map((s) => s.result));
    const wsDone = await Promise.all(overWs.map((s) => s.result));
    for (const [i, s] of overSse.entries()) {
      assert.equal(sseDone[i].content, sseTexts[i]);
      assert.equal(sseDone[i].content, wsDone[i].content, 'rulebased is deterministic');
      assert.equal(sseDone[i].finish_reason, wsDone[i].finish_reason);
      assert.equal(sseDone[i].id, s.id);
      assert.equal(s.status, 'done');
      assert.equal(s.provider, 'rulebased');
      assert.ok(s.stats.chunks > 0);
      assert.equal(s.stats.tokens, sseDone[i].usage.completion_tokens);
      // generated ids carry a per-client tag: HTTP ids are shared by all of a gateway's clients
      assert.match(s.id, new RegExp(`^s${i + 1}-[0-9a-f]+$`));
    }
    assert.equal(sse.transport, 'sse');
    assert.equal(sse.state, 'open');
    const ready = await sse.ready;
    assert.equal(ready.synthetic, true);
  });

  test('cancel(): DELETE /v1/streams/{key}; result is cancelled with the text so far', async () => {
    const c = client(slow.url);
    let chunks = 0;
    const s = c.stream(LONG, { onChunk: (_, st) => ++chunks === 2 && st.cancel() });
    const text = await collect(s);
    const done = await s.result;
    assert.equal(done.finish_reason, 'cancelled');
    assert.ok(done.usage, 'the done came from the gateway');
    assert.equal(done.content, text);
    assert.ok(text.length > 0);
    assert.equal(s.status, 'cancelled');
    assert.equal(await activeStreams(slow.url), 0);
  });

  test('AbortSignal cancels too, also before the gateway answered', async () => {
    const c = client(slow.url);
    const early = new AbortController();
    const s1 = c.stream(LONG, { signal: early.signal });
    early.abort(); // before the POST was answered: DELETE follows the ack
    const late = new AbortController();
    const s2 = c.stream(LONG, { signal: late.signal, onChunk: () => late.abort() });
    const [d1, d2] = await Promise.all([s1.result, s2.result]);
    assert.equal(d1.finish_reason, 'cancelled');
    assert.equal(d2.finish_reason, 'cancelled');
    assert.equal(d2.content, s2.text);
    await waitFor(async () => (await activeStreams(slow.url)) === 0, 5000, 'no running streams');
  });

  test('errors before the stream starts arrive as HTTP statuses', async () => {
    const c = client(gw.url);
    const cases = [
      [{ provider: 'mistral', prompt: 'hi' }, 'unknown_provider', 404],
      [{ id: 'x', prompt: 5 }, 'bad_message', 400],
      [{ prompt: 'hi', plan: {} }, 'bad_message', 400],
      [{ provider: 'openai', prompt: 'hi' }, 'provider_not_configured', 503],
      [{ agent: 'writer', prompt: 'hi' }, 'unknown_agent', 404],
    ];
    for (const [request, code, status] of cases) {
      const s = c.stream(/** @type {any} */ (request));
      const error = await rejection(s.result);
      assert.ok(error instanceof TokenwireError);
      assert.equal(error.code, code, JSON.stringify(request));
      assert.equal(error.status, status);
      assert.equal(error.retryable, false);
      assert.equal(error.streamId, s.id);
      await assert.rejects(collect(s), (e) => e === error);
    }
  });

  test('no per-connection limit: 20 streams at once all run at once', async () => {
    const c = client(slow.url);
    const streams = Array.from({ length: 20 }, () => c.stream(LONG));
    assert.ok(streams.every((s) => !s.queued), 'none held back');
    await waitFor(async () => (await activeStreams(slow.url)) === 20, 5000, '20 running streams');
    for (const s of streams) s.cancel();
    const results = await Promise.all(streams.map((s) => s.result));
    assert.ok(results.every((done) => done.finish_reason === 'cancelled'));
    await waitFor(async () => (await activeStreams(slow.url)) === 0, 5000, 'the gateway to stop them');
  });

  test('duplicate_stream: 409 while a stream of that id runs', async () => {
    const c = client(slow.url);
    const first = c.stream({ id: 'sse-dup', prompt: 'one', options: { max_tokens: 30 } });
    await waitFor(() => first.status === 'streaming');
    const error = await rejection(c.stream({ id: 'sse-dup', prompt: 'two' }).result);
    assert.equal(error.code, 'duplicate_stream');
    assert.equal(error.status, 409);
    assert.match((await first.result).content, /one/);
  });
});

describe("transport: 'auto'", () => {
  test('falls back to SSE when the first WebSocket cannot open', async () => {
    const unreachable = await unreachableWebSocket();
    const c = new TokenwireClient(gw.url, { WebSocket: unreachable.WebSocket });
    clients.push(c);
    assert.equal(c.transport, null);
    const states = [];
    c.on('state', (s) => states.push(s));
    const s = c.stream({ prompt: 'over http', options: { max_tokens: 20 } });
    const done = await s.result;
    assert.match(done.content, /over http/);
    assert.equal(c.transport, 'sse');
    assert.deepEqual(states, ['connecting', 'open']);
    assert.match(s.id, /^s1-[0-9a-f]+$/);
    // from then on: SSE, no new WebSocket
    const again = await c.stream({ prompt: 'again', options: { max_tokens: 5 } }).result;
    assert.match(again.content, /again/);
    assert.equal(unreachable.record.count, 1);
    assert.equal(c.reconnects, 0);
  });

  test('uses the WebSocket when it opens', async () => {
    const c = new TokenwireClient(gw.url, { WebSocket });
    clients.push(c);
    await c.stream({ prompt: 'hi', options: { max_tokens: 5 } }).result;
    assert.equal(c.transport, 'websocket');
  });
});
