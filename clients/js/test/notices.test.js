// Retries and failovers before the first token (`notice` messages), and the gateway's newer ways
// of saying no: `shutting_down` (with the 1001 close that follows), `rate_limited`, 1013 and a
// 1008 after `ready`. Scripted sockets for the routing, real gateways for the rest.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenwireClient, TokenwireError } from '../src/index.js';
import { freePort, startGateway } from './gateway.js';
import { collect, READY, rejection, scriptedClient, scriptedWebSocket, tick, waitFor, WebSocket } from './support.js';

const ack = (id, provider = 'rulebased', model = 'script') => ({ type: 'start', id, seq: 0, provider, model });
const done = (id, seq, content, provider = 'rulebased', model = 'script') => ({
  type: 'done', id, seq, finish_reason: 'stop', content,
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, estimated: true },
  metrics: { provider, model, ttft_ms: 1, duration_ms: 2, tokens_per_second: 3, estimated_cost_usd: 0 },
});
const retrying = (id, attempt, delay) => ({
  type: 'notice', id, code: 'retrying',
  message: `openai failed before the first token (upstream_unavailable); retrying in ${delay} s`,
  provider: 'openai', model: 'gpt-4o-mini', attempt, reason: 'upstream_unavailable', delay_s: delay,
});
const failover = (id, attempt) => ({
  type: 'notice', id, code: 'failover',
  message: 'openai failed before the first token (upstream_unavailable); trying rulebased',
  provider: 'rulebased', model: 'script', attempt, reason: 'upstream_unavailable',
});

const scripted = scriptedClient;

describe('scripted notices', () => {
  test('routed to their stream, in order, with provider/model updated; never a seq gap', async () => {
    const { client, socket } = await scripted();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const log = [];
    const s = client.stream({ id: 'n', provider: 'openai', prompt: 'hi' }, {
      onStart: (_, st) => log.push(`start ${st.provider}/${st.model}`),
      onNotice: (notice, st) => log.push(`notice ${notice.code} ${notice.attempt} ${st.provider}/${st.model}`),
      onChunk: (chunk) => log.push(`chunk ${chunk.seq}`),
      onDone: (_, st) => log.push(`done ${st.provider}/${st.model}`),
    });
    const other = client.stream({ id: 'o', prompt: 'other' });
    socket.serverSend(retrying('n', 2, 0.25)); // before the ack: no stream to route it to
    socket.serverSend(ack('n', 'openai', 'gpt-4o-mini'));
    socket.serverSend(ack('o'));
    socket.serverSend(retrying('n', 2, 0.25));
    socket.serverSend({ ...failover('n', 3), future_field: 1 });
    socket.serverSend(retrying('nobody', 2, 0.25)); // no such stream: ignored quietly
    socket.serverSend({ type: 'chunk', id: 'n', seq: 1, content: 'Hi' });
    socket.serverSend({ type: 'chunk', id: 'o', seq: 1, content: 'Yo' });
    socket.serverSend(done('n', 2, 'Hi'));
    socket.serverSend(done('o', 2, 'Yo'));
    assert.equal((await s.result).content, 'Hi');
    assert.equal((await other.result).content, 'Yo');
    assert.deepEqual(log, [
      'start openai/gpt-4o-mini',
      'notice retrying 2 openai/gpt-4o-mini',
      'notice failover 3 rulebased/script',
      'chunk 1',
      'done rulebased/script',
    ]);
    assert.deepEqual(s.notices.map((n) => [n.code, n.attempt, n.delay_s]), [['retrying', 2, 0.25], ['failover', 3, undefined]]);
    assert.notEqual(s.notices, s.notices, 'a fresh array on every read');
    assert.equal(s.provider, 'rulebased');
    assert.equal(s.model, 'script');
    assert.equal(s.status, 'done');
    assert.equal(s.stats.chunks, 1);
    assert.deepEqual(other.notices, []);
    assert.equal(other.provider, 'rulebased');
    assert.deepEqual(errors, []);
    client.close();
  });

  test('a notice of a stream that ends with an error: the error wins, the notices stay', async () => {
    const { client, socket } = await scripted();
    const s = client.stream({ id: 'f', provider: 'openai', prompt: 'hi' });
    socket.serverSend(ack('f', 'openai', 'gpt-4o-mini'));
    socket.serverSend(retrying('f', 2, 0.25));
    socket.serverSend(retrying('f', 3, 0.5));
    socket.serverSend({ type: 'error', id: 'f', seq: 1, code: 'upstream_unavailable', message: 'openai answered HTTP 503', retryable: true, provider: 'openai', status: 503 });
    socket.serverSend(retrying('f', 4, 1)); // after the end: ignored
    const error = await rejection(s.result);
    assert.equal(error.code, 'upstream_unavailable');
    assert.equal(s.notices.length, 2);
    assert.equal(s.provider, 'openai');
    client.close();
  });
});

describe('scripted close codes', () => {
  test('1001 (the gateway shuts down): ended streams stay ended, running ones fail with connection_lost', async () => {
    const { client, socket } = await scripted();
    const clientErrors = [];
    client.on('error', (e) => clientErrors.push(e));
    const onError = [];
    const handlers = { onError: (/** @type {TokenwireError} */ e) => onError.push(`${e.streamId} ${e.code}`) };
    const finished = client.stream({ id: 'a', prompt: 'a' }, handlers);
    const drained = client.stream({ id: 'b', prompt: 'b' }, handlers);
    const cut = client.stream({ id: 'c', prompt: 'c' }, handlers);
    const late = client.stream({ id: 'd', prompt: 'd' }, handlers);
    socket.serverSend(ack('a'));
    socket.serverSend(ack('b'));
    socket.serverSend(ack('c'));
    socket.serverSend({ type: 'error', id: 'd', code: 'shutting_down', message: 'the gateway is shutting down; try another instance', retryable: true });
    socket.serverSend(done('a', 1, ''));
    socket.serverSend({ type: 'error', id: 'b', seq: 1, code: 'shutting_down', message: 'the gateway is shutting down; start the stream again', retryable: true, provider: 'rulebased' });
    socket.serverClose(1001, 'server shutting down');

    assert.equal((await finished.result).finish_reason, 'stop');
    assert.equal(finished.status, 'done');
    assert.equal(finished.error, null);
    const refused = await rejection(late.result);
    assert.ok(refused instanceof TokenwireError);
    assert.deepEqual([refused.code, refused.retryable, refused.provider], ['shutting_down', true, null]);
    const ended = await rejection(drained.result);
    assert.deepEqual([ended.code, ended.retryable, ended.provider], ['shutting_down', true, 'rulebased']);
    const lost = await rejection(cut.result);
    assert.deepEqual([lost.code, lost.retryable], ['connection_lost', true]);
    assert.match(lost.message, /code 1001: server shutting down/);
    assert.deepEqual(onError, ['d shutting_down', 'b shutting_down', 'c connection_lost']);
    assert.deepEqual(clientErrors, [], 'a 1001 close is no connection-level error');
    assert.equal(client.state, 'idle');
    client.close();
  });

  test('1008 after ready (the client stopped reading) is a lost connection, not unauthorized', async () => {
    const fake = scriptedWebSocket();
    const client = new TokenwireClient('http://gateway.test', { WebSocket: fake.WebSocket, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
    const clientErrors = [];
    client.on('error', (e) => clientErrors.push(e));
    const ready = client.connect();
    fake.sockets[0].serverOpen(READY);
    await ready;
    const s = client.stream({ prompt: 'hi' });
    fake.sockets[0].serverSend(ack('s1'));
    fake.sockets[0].serverClose(1008, 'client stopped reading');
    const error = await rejection(s.result);
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.retryable, true);
    assert.match(error.message, /code 1008: client stopped reading/);
    await waitFor(() => fake.sockets.length === 2, 1000, 'a reconnect');
    assert.deepEqual(clientErrors, []);
    client.close();
  });
});

// ---- against real gateways --------------------------------------------------------------------

/** @type {import('./gateway.js').Gateway} default retries: 2, after 0.25 s and 0.5 s */
let retries;
/** @type {import('./gateway.js').Gateway} ollama (unreachable) fails over to rulebased at once */
let failovers;
const clients = [];
const client = (gw, transport, options = {}) => {
  const c = new TokenwireClient(gw.url, { WebSocket, transport, ...options });
  clients.push(c);
  return c;
};

before(async () => {
  const closedPort = await freePort(); // connection refused: upstream_unavailable, retryable
  [retries, failovers] = await Promise.all([
    startGateway(),
    startGateway({
      config: { streaming: { retry_attempts: 0 }, providers: { ollama: { fallbacks: ['rulebased'] } } },
      env: { OLLAMA_HOST: `http://127.0.0.1:${closedPort}` },
    }),
  ]);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all([retries?.stop(), failovers?.stop()]);
});

const FAULTY = { prompt: 'hi', options: { fault: { error_after_chunks: 0, error_code: 'upstream_unavailable' } } };
const QUESTION = { prompt: 'Why is the sky blue?', options: { max_tokens: 40 } };

for (const transport of /** @type {const} */ (['websocket', 'sse'])) {
  describe(`notices over ${transport}`, () => {
    test('a fault before the first chunk: two retrying notices, then upstream_unavailable', async () => {
      const c = client(retries, transport);
      const seen = [];
      const s = c.stream(FAULTY, {
        onNotice: (notice, st) => seen.push([notice.code, notice.attempt, st.status]),
        onChunk: () => assert.fail('no chunk expected'),
      });
      const error = await rejection(s.result);
      assert.ok(error instanceof TokenwireError);
      assert.equal(error.code, 'upstream_unavailable');
      assert.equal(error.retryable, true);
      assert.equal(error.provider, 'rulebased');
      assert.equal(error.streamId, s.id);
      assert.deepEqual(seen, [['retrying', 2, 'streaming'], ['retrying', 3, 'streaming']]);
      assert.deepEqual(
        s.notices.map((n) => [n.type, n.id, n.code, n.attempt, n.reason, n.delay_s, n.provider, n.model]),
        [
          ['notice', s.id, 'retrying', 2, 'upstream_unavailable', 0.25, 'rulebased', 'script'],
          ['notice', s.id, 'retrying', 3, 'upstream_unavailable', 0.5, 'rulebased', 'script'],
        ],
      );
      assert.match(s.notices[0].message, /retrying in 0\.25 s/);
      assert.equal(s.status, 'error');
      assert.equal(s.text, '');
    });

    test('failover: one notice, then the fallback\'s text; stream.provider names the fallback', async () => {
      const c = client(failovers, transport);
      const atStart = [];
      const atNotice = [];
      const s = c.stream({ provider: 'ollama', ...QUESTION }, {
        onStart: (ack, st) => atStart.push([ack.provider, ack.model, st.provider]),
        onNotice: (notice, st) => atNotice.push([notice.code, st.provider, st.model, st.stats.chunks]),
      });
      const text = await collect(s);
      const result = await s.result;
      assert.deepEqual(atStart, [['ollama', 'llama3.2', 'ollama']]);
      assert.deepEqual(atNotice, [['failover', 'rulebased', 'script', 0]]);
      const [notice] = s.notices;
      assert.equal(s.notices.length, 1);
      assert.deepEqual(
        [notice.code, notice.attempt, notice.reason, notice.provider, notice.model],
        ['failover', 2, 'upstream_unavailable', 'rulebased', 'script'],
      );
      assert.equal('delay_s' in notice, false);
      assert.match(notice.message, /^ollama failed before the first token/);
      assert.equal(s.provider, 'rulebased');
      assert.equal(s.model, 'script');
      assert.equal(result.metrics?.provider, 'rulebased');
      assert.equal(s.status, 'done');
      // the fallback's whole answer, exactly what rulebased gives when asked directly
      const direct = await c.stream({ provider: 'rulebased', ...QUESTION }).result;
      assert.ok(text.length > 0);
      assert.equal(text, direct.content);
      assert.equal(result.content, text);
    });
  });
}

describe('refusals and closes from a real gateway', () => {
  /** @type {import('./gateway.js').Gateway} */
  let limited;
  before(async () => {
    limited = await startGateway({
      config: { server: { max_connections: 1 }, streaming: { starts_per_second: 1, starts_burst: 1 } },
    });
  });
  after(() => limited?.stop());

  test('a socket over max_connections is closed with 1013; too many starts are refused with rate_limited', async () => {
    const first = client(limited, 'websocket', { reconnect: false });
    await first.connect();
    const second = client(limited, 'websocket', { reconnect: false });
    const closed = await rejection(second.connect());
    assert.equal(closed.code, 'connection_lost');
    assert.equal(closed.retryable, true);
    assert.match(closed.message, /code 1013/);

    const allowed = first.stream({ prompt: 'one', options: { max_tokens: 5 } });
    const refused = first.stream({ prompt: 'two', options: { max_tokens: 5 } });
    const error = await rejection(refused.result);
    assert.ok(error instanceof TokenwireError);
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryable, true);
    assert.equal(error.streamId, refused.id);
    assert.ok(typeof error.retryAfter === 'number' && error.retryAfter > 0 && error.retryAfter <= 1, String(error.retryAfter));
    assert.equal((await allowed.result).finish_reason, 'length');
  });

  test('SIGTERM: running streams end with shutting_down, new starts are refused, then 1001 fails nothing that ended', async () => {
    const gw = await startGateway({ config: { server: { shutdown_grace_seconds: 0.5 } } });
    try {
      const closes = [];
      class Recording extends WebSocket {
        constructor(/** @type {string} */ url) {
          super(url);
          this.addEventListener('close', (event) => closes.push([event.code, event.reason]));
        }
      }
      const ws = client(gw, 'websocket', { WebSocket: Recording, reconnect: false });
      const sse = client(gw, 'sse');
      const clientErrors = [];
      ws.on('error', (e) => clientErrors.push(e));
      const onError = [];
      const finished = ws.stream({ prompt: 'quick', options: { max_tokens: 5 } }, { onError: (e) => onError.push(e) });
      await finished.result;
      const STALL = { prompt: 'hi', options: { fault: { stall_after_chunks: 1 } } };
      const stalled = ws.stream(STALL);
      const stalledSse = sse.stream(STALL);
      await waitFor(() => stalled.text.length > 0 && stalledSse.text.length > 0, 5000, 'the first chunks');

      gw.child?.kill('SIGTERM');
      await tick(150); // draining: no new streams from now on
      const late = ws.stream({ prompt: 'too late' });
      const refused = await rejection(late.result);
      assert.deepEqual([refused.code, refused.retryable, refused.provider], ['shutting_down', true, null]);

      for (const s of [stalled, stalledSse]) {
        const error = await rejection(s.result);
        assert.ok(error instanceof TokenwireError);
        assert.deepEqual([error.code, error.retryable, error.provider], ['shutting_down', true, 'rulebased']);
        assert.ok(s.text.length > 0, 'the text before the end stays');
      }
      await waitFor(() => ws.state === 'idle', 5000, 'the 1001 close');
      assert.deepEqual(closes, [[1001, 'server shutting down']]);
      assert.equal(finished.status, 'done');
      assert.equal(finished.error, null);
      assert.deepEqual(onError, []);
      assert.deepEqual(clientErrors, []);
    } finally {
      await gw.stop();
    }
  });
});
