// Losing the gateway: the client reconnects with backoff and new streams use the new socket.
// In-flight streams are resumed by key (resume.test.js); a restarted gateway no longer knows the
// keys, so they fail with connection_lost. client.close() ends everything.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TokenwireClient } from '../src/index.js';
import { startGateway } from './gateway.js';
import { activeStreams, countingWebSocket, rejection, tick, waitFor, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} */
let gw;
const clients = [];
const client = (options = {}) => {
  const c = new TokenwireClient(gw.url, { WebSocket, ...options });
  clients.push(c);
  return c;
};
const LONG = { brief: { topic: 'A very long script' }, plan: { target_duration_seconds: 600 } };

before(async () => {
  gw = await startGateway({ config: { providers: { rulebased: { chunk_delay_ms: 20 } } } });
});

after(async () => {
  for (const c of clients) c.close();
  await gw?.stop();
});

test('the gateway restarts: reconnect, the resume is refused (connection_lost), then new streams work', async () => {
  const counting = countingWebSocket();
  const c = client({ WebSocket: counting.WebSocket, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  const states = [];
  const reconnects = [];
  c.on('state', (s) => states.push(s));
  c.on('reconnect', (attempt, delayMs) => reconnects.push({ attempt, delayMs }));
  const firstReady = await c.connect();

  let sawChunk;
  const chunked = new Promise((resolve) => (sawChunk = resolve));
  const inflight = c.stream(LONG, { onChunk: () => sawChunk() });
  await chunked;
  const restarted = gw.restart(); // SIGKILL: the socket drops without a close frame

  const error = await rejection(inflight.result);
  assert.equal(error.code, 'connection_lost');
  assert.equal(error.retryable, true);
  assert.equal(error.streamId, inflight.id);
  assert.equal(error.cause?.code, 'stream_expired', 'the restarted gateway does not know the key');
  assert.equal(inflight.status, 'error');
  assert.ok(inflight.text.length > 0, 'the text received before the drop stays');

  // started while the gateway is down: queued, sent on the new socket
  const during = c.stream({ prompt: 'while reconnecting', options: { max_tokens: 10 } });
  assert.equal(during.status, 'queued');
  await restarted;
  const secondReady = await c.ready; // re-armed for the new connection
  assert.notEqual(secondReady, firstReady);
  assert.match((await during.result).content, /while reconnecting/);
  const after = await c.stream({ prompt: 'after', options: { max_tokens: 10 } }).result;
  assert.match(after.content, /after/);

  assert.ok(c.reconnects >= 1);
  assert.equal(c.reconnects, reconnects.length);
  assert.equal(reconnects[0].attempt, 1);
  assert.ok(reconnects.every((r) => r.delayMs >= 0 && r.delayMs <= 200));
  assert.ok(counting.record.count >= 2);
  assert.equal(c.state, 'open');
  assert.deepEqual(states.slice(0, 3), ['connecting', 'open', 'reconnecting']);
  assert.equal(states.at(-1), 'open');
});

test('reconnect: false — the client goes idle and reconnects on the next stream', async () => {
  const counting = countingWebSocket();
  const c = client({ WebSocket: counting.WebSocket, reconnect: false });
  await c.connect();
  const inflight = c.stream(LONG);
  await waitFor(() => inflight.stats.chunks > 0);
  await gw.restart();
  assert.equal((await rejection(inflight.result)).code, 'connection_lost');
  await waitFor(() => c.state === 'idle');
  assert.equal((await rejection(c.ready)).code, 'connection_lost');
  await tick(50);
  assert.equal(counting.record.count, 1);
  const next = await c.stream({ prompt: 'next', options: { max_tokens: 5 } }).result;
  assert.match(next.content, /next/);
  assert.equal(counting.record.count, 2);
  assert.equal(c.reconnects, 0);
});

test('close(): streams fail with code closed; the client cannot be used again', async () => {
  const c = client();
  const queued = c.stream({ prompt: 'queued' });
  c.close();
  const e1 = await rejection(queued.result);
  assert.equal(e1.code, 'closed');
  assert.equal(e1.retryable, false);

  const c2 = client();
  const running = c2.stream(LONG);
  await waitFor(() => running.stats.chunks > 0);
  c2.close();
  const e2 = await rejection(running.result);
  assert.equal(e2.code, 'closed');
  assert.equal(c2.state, 'closed');
  assert.equal((await rejection(c2.ready)).code, 'closed');
  assert.equal((await rejection(c2.stream({ prompt: 'late' }).result)).code, 'closed');
  c2.close(); // idempotent
  // close() cancelled the stream on the gateway (a socket that merely drops would not: it waits for a resume)
  await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'the gateway to drop the stream');
});
