// Resuming streams after a dropped connection (issue #7). A TCP proxy between the client and a
// real gateway cuts the connections, so the gateway's streams keep running and the client must
// come back for them: WebSocket `resume` after reconnecting, SSE `GET /v1/streams/{key}` with
// `Last-Event-ID`. Scripted sockets check the frames and the routing of refusals.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenwireClient, TokenwireError } from '../src/index.js';
import { startGateway } from './gateway.js';
import { startProxy } from './proxy.js';
import { activeStreams, collect, countingWebSocket, READY, rejection, scriptedWebSocket, streamCountingWebSocket, tick, waitFor, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} chunks every 10 ms; disconnected streams wait 30 s for a resume */
let gw;
/** @type {import('./gateway.js').Gateway} nothing waits for a resume: a drop cancels, nothing is kept */
let forgetful;
/** @type {Array<{close(): unknown}>} */
const closers = [];

before(async () => {
  [gw, forgetful] = await Promise.all([
    startGateway({ config: { providers: { rulebased: { chunk_delay_ms: 10 } } } }),
    startGateway({
      config: {
        providers: { rulebased: { chunk_delay_ms: 10 } },
        resume: { resume_grace_seconds: 0, retention_seconds: 0 },
      },
    }),
  ]);
});

after(async () => {
  for (const c of closers) await c.close();
  await Promise.all([gw?.stop(), forgetful?.stop()]);
});

/** @param {ConstructorParameters<typeof TokenwireClient>} args */
const client = (...args) => {
  const c = new TokenwireClient(...args);
  closers.push(c);
  return c;
};
/** @param {number} port */
const proxyTo = async (port) => {
  const proxy = await startProxy(port);
  closers.push(proxy);
  return proxy;
};

const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 100 };
const KEY = /^[A-Za-z0-9_-]{32}$/;
const SCRIPT = { brief: { topic: 'How tides work' }, plan: { target_duration_seconds: 120 } }; // ~100 chunks, ~1 s
const SHORT = { brief: { topic: 'How solar panels work' }, plan: { target_duration_seconds: 60 } }; // ~55 chunks
const LONG = { brief: { topic: 'A very long script' }, plan: { target_duration_seconds: 600 } };

/**
 * Every seq from 1 to the terminal one's predecessor, exactly once, in order (a merged chunk
 * covers `fromSeq`..`seq`).
 * @param {import('../index.js').StreamChunk[]} chunks
 * @param {import('../index.js').Done} done
 */
function assertEverySeqOnce(chunks, done) {
  const seen = [];
  for (const chunk of chunks) for (let seq = chunk.fromSeq ?? chunk.seq; seq <= chunk.seq; seq++) seen.push(seq);
  assert.deepEqual(seen, Array.from({ length: done.seq - 1 }, (_, i) => i + 1));
}

/** The results of the same requests on a connection that never drops (rulebased is deterministic). */
async function reference(...requests) {
  const c = client(gw.url, { WebSocket });
  return Promise.all(requests.map((r) => c.stream(r).result));
}

/** A fetch that records what it is asked. */
function recordingFetch() {
  /** @type {Array<{url: string, method: string, headers: Record<string, string>}>} */
  const calls = [];
  /** @type {import('../index.js').FetchLike} */
  const fetchImpl = (url, init = {}) => {
    calls.push({ url, method: init.method ?? 'GET', headers: /** @type {Record<string, string>} */ (init.headers ?? {}) });
    return fetch(url, init);
  };
  return { fetch: fetchImpl, calls };
}

describe('WebSocket: resuming after a dropped connection', () => {
  test('a dropped socket (twice): the streams resume where they were; every seq exactly once, text = done.content', async () => {
    const proxy = await proxyTo(gw.port);
    const counting = countingWebSocket();
    const c = client(proxy.url, { WebSocket: counting.WebSocket, reconnect: FAST_RECONNECT });
    const states = [];
    c.on('state', (s) => states.push(s));
    /** @type {Map<string, import('../index.js').StreamChunk[]>} */
    const chunks = new Map();
    const drops = [8, 40];
    const record = (/** @type {import('../index.js').StreamChunk} */ chunk, /** @type {import('../index.js').TokenwireStream} */ s) => {
      chunks.get(s.id)?.push(chunk) ?? chunks.set(s.id, [chunk]);
    };
    const script = c.stream(SCRIPT, {
      onChunk: (chunk, s) => {
        record(chunk, s);
        if (drops.length && chunk.seq >= drops[0]) {
          drops.shift();
          proxy.drop(); // both streams' socket
        }
      },
    });
    const short = c.stream(SHORT, { onChunk: record });
    const iterated = collect(script);
    const [doneScript, doneShort] = await Promise.all([script.result, short.result]);
    const [refScript, refShort] = await reference(SCRIPT, SHORT);

    assert.equal(drops.length, 0, 'the socket was dropped twice');
    assert.equal(await iterated, doneScript.content, 'the iterator saw the whole text once');
    for (const [s, done, ref] of /** @type {const} */ ([[script, doneScript, refScript], [short, doneShort, refShort]])) {
      assert.equal(s.status, 'done');
      assert.equal(done.content, ref.content, 'the same text as without a drop');
      assert.equal(done.finish_reason, ref.finish_reason);
      assert.ok(done.usage, 'the done came from the gateway');
      const received = chunks.get(s.id) ?? [];
      assert.equal(received.map((ch) => ch.content).join(''), done.content, 'onChunk saw every piece once');
      assertEverySeqOnce(received, done);
      assert.match(/** @type {string} */ (s.key), KEY);
    }
    const resumes = counting.record.sent.filter((m) => m.type === 'resume');
    assert.ok(resumes.length >= 2, `resumes sent: ${JSON.stringify(resumes)}`);
    for (const r of resumes) {
      const s = r.id === script.id ? script : short;
      assert.equal(r.key, s.key);
      assert.ok(Number.isInteger(r.after_seq) && r.after_seq >= 0);
    }
    assert.ok(counting.record.count >= 3, 'a socket per connection');
    assert.ok(c.reconnects >= 2);
    assert.deepEqual(states.slice(0, 4), ['connecting', 'open', 'reconnecting', 'open']);
    // the resumed streams ended: nothing left running on the gateway
    await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'no running streams');
  });

  test('a stream still waiting for its first token: resumed from its ack (after_seq 0)', async () => {
    const proxy = await proxyTo(gw.port);
    const counting = countingWebSocket();
    const c = client(proxy.url, { WebSocket: counting.WebSocket, reconnect: FAST_RECONNECT });
    const request = { prompt: 'Late first token', options: { max_tokens: 40, fault: { first_token_delay_ms: 400 } } };
    const s = c.stream(request, { onStart: () => proxy.drop() });
    const text = await collect(s);
    const done = await s.result;
    assert.equal(text, done.content);
    assert.equal(done.content, (await reference(request))[0].content);
    const resume = counting.record.sent.find((m) => m.type === 'resume');
    assert.deepEqual(resume, { type: 'resume', key: s.key, after_seq: 0, id: s.id });
  });

  test('streams waiting for a slot survive a drop: the running ones resume, the waiting ones start after them on the new socket', async () => {
    const proxy = await proxyTo(gw.port);
    const counting = streamCountingWebSocket();
    const c = client(proxy.url, { WebSocket: counting.WebSocket, reconnect: FAST_RECONNECT });
    await c.connect();
    const running = Array.from({ length: 16 }, () => c.stream(SHORT));
    const waiting = [1, 2].map((n) => c.stream({ prompt: `waiting ${n}`, options: { max_tokens: 10 } }));
    await waitFor(() => running[0].stats.chunks >= 3, 5000, 'a few chunks');
    proxy.drop();
    await waitFor(() => c.state === 'reconnecting', 5000, 'the drop');
    assert.ok(waiting.every((s) => s.queued && s.status === 'queued'), 'still waiting, not failed');
    assert.deepEqual(counting.record.started, running.map((s) => s.id), 'nothing sent for them on the lost socket');
    const results = await Promise.all(running.map((s) => s.result));
    const [ref] = await reference(SHORT);
    for (const done of results) assert.equal(done.content, ref.content, 'resumed, the same text as without a drop');
    for (const [i, s] of waiting.entries()) assert.match((await s.result).content, new RegExp(`waiting ${i + 1}`));
    assert.equal(counting.record.peak, 16, "the resumed streams count against the new socket's limit");
    assert.deepEqual(counting.record.started, [...running, ...waiting].map((s) => s.id));
  });

  test('cancel() while disconnected: cancel by key once reconnected; the gateway answers with the cancelled done', async () => {
    const proxy = await proxyTo(gw.port);
    const counting = countingWebSocket();
    const c = client(proxy.url, { WebSocket: counting.WebSocket, reconnect: FAST_RECONNECT });
    const s = c.stream(LONG);
    await waitFor(() => s.stats.chunks >= 3, 5000, 'a few chunks');
    proxy.refuse(true);
    proxy.drop();
    await waitFor(() => c.state === 'reconnecting', 5000, 'the drop');
    await tick(50);
    assert.equal(s.status, 'streaming', 'a stream waiting to be resumed has not failed');
    s.cancel();
    proxy.refuse(false);
    const done = await s.result;
    assert.equal(done.finish_reason, 'cancelled');
    assert.ok(done.usage, 'the done came from the gateway');
    assert.equal(done.content, s.text);
    assert.equal(s.status, 'cancelled');
    const sent = counting.record.sent.filter((m) => m.type === 'resume' || m.type === 'cancel');
    assert.deepEqual(sent.map((m) => m.type), ['resume', 'cancel']);
    assert.deepEqual(sent[1], { type: 'cancel', key: s.key });
    await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'the gateway to stop the stream');
  });

  test('resume refused with stream_expired: connection_lost (retryable), the refusal as its cause', async () => {
    const proxy = await proxyTo(forgetful.port);
    const c = client(proxy.url, { WebSocket, reconnect: FAST_RECONNECT });
    const clientErrors = [];
    c.on('error', (e) => clientErrors.push(e));
    const other = [];
    const s = c.stream(LONG, { onError: (e) => other.push(e) });
    await waitFor(() => s.stats.chunks >= 2, 5000, 'a few chunks');
    proxy.refuse(true); // long enough for the gateway to have cancelled and forgotten the stream
    proxy.drop();
    await tick(300);
    proxy.refuse(false);
    const error = await rejection(s.result);
    assert.ok(error instanceof TokenwireError);
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.retryable, true);
    assert.equal(error.streamId, s.id);
    assert.match(error.message, /could not be resumed \(stream_expired: /);
    assert.ok(error.cause instanceof TokenwireError);
    assert.equal(error.cause.code, 'stream_expired');
    assert.equal(error.cause.retryable, false);
    assert.deepEqual(other, [error]);
    assert.deepEqual(clientErrors, [], 'the refusal went to its stream');
    await assert.rejects(collect(s), (e) => e === error);
    // the connection is fine for new streams
    assert.equal((await c.stream({ prompt: 'after', options: { max_tokens: 5 } }).result).finish_reason, 'length');
  });

  test('reconnecting gives up: streams waiting to be resumed fail with connection_lost', async () => {
    const proxy = await proxyTo(gw.port);
    const c = client(proxy.url, { WebSocket, reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 2 } });
    const s = c.stream(LONG);
    await waitFor(() => s.stats.chunks >= 2, 5000, 'a few chunks');
    proxy.refuse(true);
    proxy.drop();
    const error = await rejection(s.result);
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.retryable, true);
    assert.match(error.message, /reconnecting gave up/);
    assert.equal(c.state, 'idle');
    assert.equal(c.reconnects, 2);
    assert.ok(s.text.length > 0, 'the text received before the drop stays');
    // nobody resumes it: the gateway would cancel it after resume_grace_seconds; do it now
    assert.equal((await fetch(`${gw.url}/v1/streams/${s.key}`, { method: 'DELETE' })).status, 204);
  });

  test('close() while a stream waits to be resumed: it fails with closed and is cancelled by key over HTTP', async () => {
    const proxy = await proxyTo(gw.port);
    const recording = recordingFetch();
    const c = client(proxy.url, { WebSocket, fetch: recording.fetch, reconnect: { initialDelayMs: 5000, maxDelayMs: 5000, jitter: 0 } });
    const s = c.stream(LONG);
    await waitFor(() => s.stats.chunks >= 2, 5000, 'a few chunks');
    proxy.drop();
    await waitFor(() => c.state === 'reconnecting', 5000, 'the drop');
    assert.equal(await activeStreams(gw.url), 1, 'the gateway keeps the stream for a resume');
    c.close();
    const error = await rejection(s.result);
    assert.equal(error.code, 'closed');
    assert.deepEqual(
      recording.calls.map((call) => `${call.method} ${call.url}`),
      [`DELETE ${proxy.url}/v1/streams/${s.key}`],
    );
    await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'the gateway to stop the stream');
  });
});

describe('SSE: resuming a broken event stream', () => {
  test('the response breaks mid-stream: GET /v1/streams/{key} with Last-Event-ID; every seq exactly once', async () => {
    const proxy = await proxyTo(gw.port);
    const recording = recordingFetch();
    const c = client(proxy.url, { transport: 'sse', fetch: recording.fetch, reconnect: FAST_RECONNECT });
    /** @type {import('../index.js').StreamChunk[]} */
    const chunks = [];
    const drops = [8, 40];
    const lastSeqAtDrop = [];
    const s = c.stream(SCRIPT, {
      onChunk: (chunk) => {
        chunks.push(chunk);
        if (drops.length && chunk.seq >= drops[0]) {
          drops.shift();
          lastSeqAtDrop.push(chunk.seq);
          proxy.drop();
        }
      },
    });
    const iterated = collect(s);
    const done = await s.result;
    assert.equal(drops.length, 0, 'the response was cut twice');
    assert.equal(await iterated, done.content);
    assert.equal(done.content, (await reference(SCRIPT))[0].content);
    assert.ok(done.usage);
    assert.equal(s.status, 'done');
    assertEverySeqOnce(chunks, done);
    assert.match(/** @type {string} */ (s.key), KEY);
    const gets = recording.calls.filter((call) => call.method === 'GET');
    assert.equal(gets.length, 2, JSON.stringify(recording.calls));
    for (const [i, get] of gets.entries()) {
      assert.equal(get.url, `${proxy.url}/v1/streams/${s.key}`);
      // the last seq the stream had: the chunk that dropped the connection, or one already on its way
      assert.ok(Number(get.headers['last-event-id']) >= lastSeqAtDrop[i], JSON.stringify(get.headers));
    }
    await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'no running streams');
  });

  test('resume refused with stream_expired: connection_lost, the 404 refusal as its cause', async () => {
    const proxy = await proxyTo(forgetful.port);
    const recording = recordingFetch();
    const c = client(proxy.url, { transport: 'sse', fetch: recording.fetch, reconnect: { initialDelayMs: 100, maxDelayMs: 200, jitter: 0 } });
    const s = c.stream(LONG);
    await waitFor(() => s.stats.chunks >= 2, 5000, 'a few chunks');
    proxy.drop(); // the gateway cancels the stream at once and keeps nothing
    const error = await rejection(s.result);
    assert.ok(error instanceof TokenwireError);
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.retryable, true);
    assert.match(error.message, /could not be resumed \(stream_expired: /);
    assert.ok(error.cause instanceof TokenwireError);
    assert.equal(error.cause.code, 'stream_expired');
    assert.equal(error.cause.status, 404);
    assert.deepEqual(recording.calls.map((call) => call.method), ['POST', 'GET']);
  });

  test('the gateway stays unreachable: connection_lost after a few attempts', async () => {
    const proxy = await proxyTo(gw.port);
    const recording = recordingFetch();
    const c = client(proxy.url, { transport: 'sse', fetch: recording.fetch, reconnect: { initialDelayMs: 5, maxDelayMs: 10 } });
    const s = c.stream(LONG);
    await waitFor(() => s.stats.chunks >= 2, 5000, 'a few chunks');
    proxy.refuse(true);
    proxy.drop();
    const error = await rejection(s.result);
    assert.equal(error.code, 'connection_lost');
    assert.match(error.message, /resuming failed 5 times in a row/);
    assert.equal(recording.calls.filter((call) => call.method === 'GET').length, 5);
    // nobody resumes it: the gateway would cancel it after resume_grace_seconds; do it now
    assert.equal((await fetch(`${gw.url}/v1/streams/${s.key}`, { method: 'DELETE' })).status, 204);
  });

  test('cancel(): DELETE /v1/streams/{key}, also when requested before the start event', async () => {
    const recording = recordingFetch();
    const c = client(gw.url, { transport: 'sse', fetch: recording.fetch });
    let chunks = 0;
    const late = c.stream(LONG, { onChunk: (_, st) => ++chunks === 2 && st.cancel() });
    const early = c.stream(LONG);
    early.cancel(); // before the POST was answered: the DELETE follows the start event
    const [doneLate, doneEarly] = await Promise.all([late.result, early.result]);
    for (const [s, done] of /** @type {const} */ ([[late, doneLate], [early, doneEarly]])) {
      assert.equal(done.finish_reason, 'cancelled');
      assert.ok(done.usage, 'the gateway answered the cancel');
      assert.equal(done.content, s.text);
      assert.match(/** @type {string} */ (s.key), KEY);
    }
    const deletes = recording.calls.filter((call) => call.method === 'DELETE').map((call) => call.url).sort();
    assert.deepEqual(deletes, [`${gw.url}/v1/streams/${late.key}`, `${gw.url}/v1/streams/${early.key}`].sort());
    assert.ok(deletes.every((url) => !url.endsWith(late.id) && !url.endsWith(early.id)), 'never by id');
    await waitFor(async () => (await activeStreams(gw.url)) === 0, 5000, 'no running streams');
  });
});

describe('scripted resumes', () => {
  const K1 = 'k'.repeat(32);
  const K2 = 'q'.repeat(32);
  const ack = (id, key) => ({ type: 'start', id, seq: 0, provider: 'rulebased', model: 'script', key });
  const chunk = (id, seq, content, from_seq) => ({ type: 'chunk', id, seq, content, ...(from_seq ? { from_seq } : {}) });
  const done = (id, seq, content, finish_reason = 'stop') => ({
    type: 'done', id, seq, finish_reason, content,
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, estimated: true },
    metrics: { provider: 'rulebased', model: 'script', ttft_ms: 1, duration_ms: 2, tokens_per_second: 3, estimated_cost_usd: 0 },
  });
  const notice = (id, attempt) => ({
    type: 'notice', id, code: 'retrying', message: 'retrying', provider: 'openai', model: 'gpt-4o-mini',
    attempt, reason: 'upstream_unavailable', delay_s: 0.25,
  });

  /** A client on scripted sockets, with its first connection ready. */
  async function scripted() {
    const fake = scriptedWebSocket();
    const c = new TokenwireClient('http://gateway.test', { WebSocket: fake.WebSocket, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
    const ready = c.connect();
    fake.sockets[0].serverOpen(READY);
    await ready;
    return { c, fake };
  }

  test('the frames: a resume per acked stream (after_seq = its last seq, its id), then a ping; replayed notices count once', async () => {
    const { c, fake } = await scripted();
    const notices = [];
    const a = c.stream({ id: 'a', prompt: 'a' }, { onNotice: (n) => notices.push(n.attempt) });
    const b = c.stream({ id: 'b', prompt: 'b' });
    const unacked = c.stream({ id: 'u', prompt: 'u' });
    const s0 = fake.sockets[0];
    s0.serverSend(ack('a', K1));
    s0.serverSend(notice('a', 2));
    s0.serverSend(ack('b', K2));
    s0.serverSend(chunk('b', 1, 'one '));
    s0.serverSend(chunk('b', 3, 'two three ', 2));
    s0.serverClose(1006);

    // never acked: no key to resume with
    const lost = await rejection(unacked.result);
    assert.equal(lost.code, 'connection_lost');
    await waitFor(() => fake.sockets.length === 2, 1000, 'a reconnect');
    const s1 = fake.sockets[1];
    s1.serverOpen(READY);
    await c.ready;
    assert.deepEqual(s1.sent, [
      { type: 'resume', key: K1, after_seq: 0, id: 'a' },
      { type: 'resume', key: K2, after_seq: 3, id: 'b' },
      { type: 'ping', ts: 'tokenwire:resumed' },
    ]);
    s1.serverSend(notice('a', 2)); // replayed (after_seq 0)
    s1.serverSend(notice('a', 3)); // new
    s1.serverSend(chunk('a', 1, 'A'));
    s1.serverSend(done('a', 2, 'A'));
    s1.serverSend(chunk('b', 4, 'four'));
    s1.serverSend({ type: 'pong', ts: 'tokenwire:resumed' });
    s1.serverSend(done('b', 5, 'one two three four'));
    assert.equal((await a.result).content, 'A');
    assert.deepEqual(notices, [2, 3]);
    assert.deepEqual(a.notices.map((n) => n.attempt), [2, 3]);
    assert.equal((await b.result).content, 'one two three four');
    assert.equal(b.stats.chunks, 3);
    assert.equal(a.status, 'done');
    c.close();
  });

  test('a refused resume fails only its stream; a stream cancelled while disconnected is cancelled by key', async () => {
    const { c, fake } = await scripted();
    const clientErrors = [];
    c.on('error', (e) => clientErrors.push(e.code));
    const a = c.stream({ id: 'a', prompt: 'a' });
    const b = c.stream({ id: 'b', prompt: 'b' });
    fake.sockets[0].serverSend(ack('a', K1));
    fake.sockets[0].serverSend(ack('b', K2));
    fake.sockets[0].serverSend(chunk('b', 1, 'x'));
    fake.sockets[0].serverClose(1006);
    await tick();
    b.cancel(); // disconnected: sent by key on the next connection
    assert.equal(b.status, 'streaming');
    await waitFor(() => fake.sockets.length === 2, 1000, 'a reconnect');
    const s1 = fake.sockets[1];
    s1.serverOpen(READY);
    assert.deepEqual(s1.sent, [
      { type: 'resume', key: K1, after_seq: 0, id: 'a' },
      { type: 'resume', key: K2, after_seq: 1, id: 'b' },
      { type: 'cancel', key: K2 },
      { type: 'ping', ts: 'tokenwire:resumed' },
    ]);
    s1.serverSend({ type: 'error', id: 'a', code: 'stream_expired', message: 'no stream with this key: unknown, or expired', retryable: false });
    s1.serverSend(done('b', 2, 'x', 'cancelled'));
    s1.serverSend({ type: 'pong', ts: 'tokenwire:resumed' });
    const error = await rejection(a.result);
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.cause.code, 'stream_expired');
    assert.match(error.message, /^the connection to the gateway closed \(code 1006\); the stream could not be resumed/);
    const cancelled = await b.result;
    assert.equal(cancelled.finish_reason, 'cancelled');
    assert.ok(cancelled.usage);
    // after the barrier, an error without seq is no longer a resume's refusal
    s1.serverSend({ type: 'error', code: 'unknown_stream', message: 'no stream with this key', retryable: false });
    assert.deepEqual(clientErrors, ['unknown_stream']);
    c.close();
  });

  test('an unknown_stream reply to a cancel by key (before the barrier) is not reported', async () => {
    const { c, fake } = await scripted();
    const clientErrors = [];
    c.on('error', (e) => clientErrors.push(e.code));
    const a = c.stream({ id: 'a', prompt: 'a' });
    fake.sockets[0].serverSend(ack('a', K1));
    fake.sockets[0].serverClose(1006);
    await tick();
    a.cancel();
    await waitFor(() => fake.sockets.length === 2, 1000, 'a reconnect');
    const s1 = fake.sockets[1];
    s1.serverOpen(READY);
    s1.serverSend({ type: 'error', id: 'a', code: 'stream_expired', message: 'no stream with this key: unknown, or expired', retryable: false });
    s1.serverSend({ type: 'error', code: 'unknown_stream', message: 'no stream with this key', retryable: false });
    s1.serverSend({ type: 'pong', ts: 'tokenwire:resumed' });
    const result = await a.result;
    assert.equal(result.finish_reason, 'cancelled', 'a stream being cancelled resolves as cancelled');
    assert.equal(result.usage, null);
    assert.deepEqual(clientErrors, []);
    c.close();
  });
});
