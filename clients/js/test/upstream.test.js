// Errors that need a special gateway: a fake OpenAI upstream (timeout, rate limit, real usage)
// and max_streams_per_connection = 1 (the client queues beyond it). Both transports where they apply.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenwireClient } from '../src/index.js';
import { startGateway } from './gateway.js';
import { collect, rejection, startFakeOpenAI, waitFor, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} */
let gw;
/** @type {Awaited<ReturnType<typeof startFakeOpenAI>>} */
let upstream;
const clients = [];
const client = (transport) => {
  const c = new TokenwireClient(gw.url, { WebSocket, transport });
  clients.push(c);
  return c;
};

before(async () => {
  upstream = await startFakeOpenAI();
  gw = await startGateway({
    // retry_attempts 0: the 429 (retry-after 3 s) would otherwise be retried twice before it is
    // reported; retries and their notices are tested in notices.test.js.
    config: { streaming: { idle_timeout_seconds: 0.5, max_streams_per_connection: 1, retry_attempts: 0 } },
    env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: upstream.baseUrl },
  });
});

after(async () => {
  for (const c of clients) c.close();
  await gw?.stop();
  await upstream?.close();
});

for (const transport of /** @type {const} */ (['websocket', 'sse'])) {
  describe(`upstream errors over ${transport}`, () => {
    test('timeout: one chunk, then the upstream stalls past idle_timeout_seconds', async () => {
      const c = client(transport);
      const s = c.stream({ provider: 'openai', model: 'stall', prompt: 'hi' });
      const chunks = [];
      const iterated = (async () => {
        for await (const chunk of s) chunks.push(chunk);
      })();
      const error = await rejection(s.result);
      assert.equal(error.code, 'timeout');
      assert.equal(error.retryable, true);
      assert.equal(error.provider, 'openai');
      assert.equal(error.streamId, s.id);
      assert.match(error.message, /no data from upstream/);
      await assert.rejects(iterated, (e) => e === error);
      assert.deepEqual(chunks, [{ content: 'Hello', seq: 1 }]);
      assert.equal(s.text, 'Hello');
      assert.equal(s.status, 'error');
      assert.equal(s.provider, 'openai');
      assert.equal(s.model, 'stall');
    });

    test('upstream_rate_limited carries retryAfter from retry-after', async () => {
      const c = client(transport);
      const s = c.stream({ provider: 'openai', model: 'ratelimit', prompt: 'hi' });
      const error = await rejection(s.result);
      assert.equal(error.code, 'upstream_rate_limited');
      assert.equal(error.retryable, true);
      assert.equal(error.retryAfter, 3);
      assert.equal(error.status, 429); // the upstream's status
      assert.equal(error.provider, 'openai');
      assert.deepEqual(s.notices, []);
    });

    test('a normal upstream stream: stats.tokens is the provider-reported usage', async () => {
      const c = client(transport);
      const s = c.stream({ provider: 'openai', model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
      const text = await collect(s);
      const done = await s.result;
      assert.equal(text, 'Hello, world!');
      assert.equal(done.content, text);
      assert.equal(done.finish_reason, 'stop');
      assert.deepEqual(done.usage, { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, estimated: false });
      assert.equal(s.stats.tokens, 7);
      assert.equal(upstream.requests.at(-1).headers.authorization, 'Bearer sk-test');
    });
  });
}

describe('limits', () => {
  test('max_streams_per_connection = 1: the second stream waits for the first, no too_many_streams', async () => {
    const c = client('websocket');
    const ready = await c.connect();
    assert.equal(ready.limits.max_streams, 1);
    const first = c.stream({ brief: { topic: 'Long' }, plan: { target_duration_seconds: 600 } });
    const second = c.stream({ prompt: 'one too many', options: { max_tokens: 5 } });
    await waitFor(() => first.stats.chunks > 0, 5000, 'the first stream to run');
    assert.equal(second.queued, true);
    assert.equal(second.status, 'queued');
    first.cancel();
    assert.equal((await first.result).finish_reason, 'cancelled');
    // room again: the second one starts
    assert.equal((await second.result).finish_reason, 'length');
  });
});
