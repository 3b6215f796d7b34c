// A gateway with auth_tokens: 1008 close (WebSocket) and 401 (HTTP) without a token; a token works
// over both transports.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TokenwireClient } from '../src/index.js';
import { startGateway } from './gateway.js';
import { countingWebSocket, rejection, tick, WebSocket } from './support.js';

const TOKEN = 'secret-token/with+chars';
/** @type {import('./gateway.js').Gateway} */
let gw;
const clients = [];
const client = (options) => {
  const c = new TokenwireClient(gw.url, { WebSocket, ...options });
  clients.push(c);
  return c;
};

before(async () => {
  gw = await startGateway({ config: { server: { auth_tokens: [TOKEN] } } });
});

after(async () => {
  for (const c of clients) c.close();
  await gw?.stop();
});

test('WebSocket without a token: streams fail with unauthorized, no reconnect', async () => {
  const counting = countingWebSocket();
  const c = client({ transport: 'websocket', WebSocket: counting.WebSocket, reconnect: { initialDelayMs: 10 } });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const queued = [c.stream({ prompt: 'a' }), c.stream({ prompt: 'b' })];
  for (const s of queued) {
    const error = await rejection(s.result);
    assert.equal(error.code, 'unauthorized');
    assert.equal(error.retryable, false);
    assert.equal(error.streamId, s.id);
    assert.match(error.message, /token/);
  }
  assert.equal((await rejection(c.ready)).code, 'unauthorized');
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'unauthorized');
  await tick(100);
  assert.equal(c.state, 'idle');
  assert.equal(c.reconnects, 0);
  assert.equal(counting.record.count, 1);
});

test("'auto' does not fall back to SSE on a 1008 close (the socket did open)", async () => {
  const c = client({});
  const error = await rejection(c.stream({ prompt: 'a' }).result);
  assert.equal(error.code, 'unauthorized');
  assert.equal(c.transport, 'websocket');
});

test('SSE without a token: 401 unauthorized', async () => {
  const c = client({ transport: 'sse' });
  const error = await rejection(c.stream({ prompt: 'a' }).result);
  assert.equal(error.code, 'unauthorized');
  assert.equal(error.status, 401);
  assert.equal(error.retryable, false);
});

test('with the token: WebSocket (?token=) and SSE (Authorization: Bearer) both work', async () => {
  for (const transport of /** @type {const} */ (['websocket', 'sse'])) {
    const c = client({ transport, token: TOKEN });
    const s = c.stream({ prompt: `via ${transport}`, options: { max_tokens: 10 } });
    const done = await s.result;
    assert.match(done.content, new RegExp(`via ${transport}`));
    // cancel needs the token too (SSE: DELETE with the bearer header)
    const long = c.stream({ brief: { topic: 'Long' }, plan: { target_duration_seconds: 600 } }, {
      onChunk: (_, st) => st.cancel(),
    });
    const cancelled = await long.result;
    assert.equal(cancelled.finish_reason, 'cancelled');
    assert.ok(cancelled.usage, `${transport}: the gateway answered the cancel`);
  }
});
