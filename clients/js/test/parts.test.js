// Protocol v1.1 parts on one stream, with scripted sockets and a scripted SSE response: the
// parts() iterator, the handlers, merged parts, seq gaps, resume mid-parts, the v1.1 `done`
// fields, and the partial-object view of JSON output.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { imagePart, MAX_IMAGE_BYTES, TokenwireClient } from '../src/index.js';
import { READY, rejection, scriptedClient, waitFor, wire } from './support.js';

const scripted = scriptedClient;

const collectAll = async (iterator) => {
  const out = [];
  for await (const item of iterator) out.push(item);
  return out;
};

const WEATHER = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const THINK_THEN_CALL = [
  wire.reasoning('s1', 1, 'The user wants '),
  wire.reasoning('s1', 3, 'the weather.', 2),
  wire.chunk('s1', 4, 'Let me look.'),
  wire.callStart('s1', 5, 'call_1', 'get_weather', 0),
  wire.callDelta('s1', 6, 'call_1', '{"city": '),
  wire.callDelta('s1', 8, 'call_1', '"Par' + 'is"}', 7),
  wire.callEnd('s1', 9, 'call_1', 'get_weather', { city: 'Paris' }),
  wire.done('s1', 10, 'Let me look.', {
    finish_reason: 'tool_calls',
    tool_calls: [{ call_id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
    reasoning: 'The user wants the weather.',
    provider_state: 'sig-1',
    usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, estimated: false, reasoning_tokens: 9, cached_tokens: 4 },
  }),
];

describe('typed parts', () => {
  test('parts() yields every part typed, in order; chunks stay text only; the request reaches the gateway as sent', async () => {
    const { client, socket } = await scripted();
    const request = { prompt: 'weather in Paris?', tools: [{ name: 'get_weather', parameters: WEATHER }], reasoning: { effort: 'low' }, tool_choice: 'auto' };
    const s = client.stream(request);
    assert.deepEqual(socket.sent, [{ type: 'start', id: 's1', ...request }]);
    socket.serverSend(wire.ack('s1'));
    for (const event of THINK_THEN_CALL) socket.serverSend(event);
    assert.deepEqual(await collectAll(s.parts()), [
      { type: 'reasoning', text: 'The user wants ', seq: 1 },
      { type: 'reasoning', text: 'the weather.', seq: 3, fromSeq: 2 },
      { type: 'text', text: 'Let me look.', seq: 4 },
      { type: 'tool-call-start', callId: 'call_1', name: 'get_weather', index: 0, seq: 5 },
      { type: 'tool-call-delta', callId: 'call_1', argumentsDelta: '{"city": ', seq: 6 },
      { type: 'tool-call-delta', callId: 'call_1', argumentsDelta: '"Paris"}', seq: 8, fromSeq: 7 },
      { type: 'tool-call-end', callId: 'call_1', name: 'get_weather', arguments: { city: 'Paris' }, seq: 9 },
    ]);
    assert.deepEqual(await collectAll(s), [{ content: 'Let me look.', seq: 4 }]);
    const done = await s.result;
    assert.equal(done.finish_reason, 'tool_calls');
    assert.deepEqual(done.tool_calls, [{ call_id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }]);
    assert.equal(done.provider_state, 'sig-1');
    assert.equal(done.usage.reasoning_tokens, 9);
    assert.equal(s.text, 'Let me look.');
    assert.equal(s.reasoning, 'The user wants the weather.');
    assert.deepEqual(s.toolCalls, [
      { callId: 'call_1', name: 'get_weather', index: 0, argumentsText: '{"city": "Paris"}', ended: true, arguments: { city: 'Paris' } },
    ]);
    assert.equal(s.stats.chunks, 1); // text chunks only
    assert.equal(s.stats.tokens, 30); // completion tokens, reasoning included, from done
    assert.equal(s.partialObject, undefined); // not a json stream
    assert.deepEqual(await collectAll(s.partialObjects()), []);
    client.close();
  });

  test('handlers: the specific one, then onPart, in protocol order; the first part of any kind is the first token', async () => {
    const { client, socket } = await scripted();
    const calls = [];
    const s = client.stream(
      { prompt: 'hi', tools: [{ name: 'get_weather' }], reasoning: {} },
      {
        onChunk: (chunk) => calls.push(['chunk', chunk.content]),
        onReasoning: (part) => calls.push(['reasoning', part.text]),
        onToolCall: (part) => calls.push(['toolCall', part.type]),
        onPart: (part, stream) => calls.push(['part', part.type, stream === s]),
        onDone: (done) => calls.push(['done', done.finish_reason]),
      },
    );
    socket.serverSend(wire.ack('s1'));
    socket.serverSend(THINK_THEN_CALL[0]);
    assert.equal(s.stats.chunks, 0);
    assert.equal(typeof s.stats.ttftMs, 'number');
    assert.equal(s.stats.tokens, 4); // 'The user wants ' is 15 characters
    for (const event of THINK_THEN_CALL.slice(1)) socket.serverSend(event);
    await s.result;
    assert.deepEqual(calls, [
      ['reasoning', 'The user wants '], ['part', 'reasoning', true],
      ['reasoning', 'the weather.'], ['part', 'reasoning', true],
      ['chunk', 'Let me look.'], ['part', 'text', true],
      ['toolCall', 'tool-call-start'], ['part', 'tool-call-start', true],
      ['toolCall', 'tool-call-delta'], ['part', 'tool-call-delta', true],
      ['toolCall', 'tool-call-delta'], ['part', 'tool-call-delta', true],
      ['toolCall', 'tool-call-end'], ['part', 'tool-call-end', true],
      ['done', 'tool_calls'],
    ]);
    client.close();
  });

  test('arguments that are not JSON: the end part and the call state carry the error', async () => {
    const { client, socket } = await scripted();
    const s = client.stream({ prompt: 'hi', tools: [{ name: 'get_weather' }] });
    const error = 'the arguments are not valid JSON: truncated';
    for (const event of [
      wire.ack('s1'),
      wire.callStart('s1', 1, 'c', 'get_weather'),
      wire.callDelta('s1', 2, 'c', '{"city": '),
      wire.callEnd('s1', 3, 'c', 'get_weather', null, error),
      wire.done('s1', 4, '', { finish_reason: 'tool_calls', tool_calls: [{ call_id: 'c', name: 'get_weather', arguments: null, arguments_error: error }] }),
    ]) {
      socket.serverSend(event);
    }
    const parts = await collectAll(s.parts());
    assert.deepEqual(parts.at(-1), { type: 'tool-call-end', callId: 'c', name: 'get_weather', arguments: null, argumentsError: error, seq: 3 });
    assert.deepEqual(s.toolCalls[0], { callId: 'c', name: 'get_weather', index: 0, argumentsText: '{"city": ', ended: true, arguments: null, argumentsError: error });
    client.close();
  });

  test('a seq gap in parts fails the stream with protocol_gap; parts() and the chunks throw it after what came', async () => {
    const { client, socket } = await scripted();
    const s = client.stream({ prompt: 'hi', reasoning: {} });
    socket.serverSend(wire.ack('s1'));
    socket.serverSend(wire.reasoning('s1', 1, 'a'));
    socket.serverSend(wire.callDelta('s1', 3, 'c', 'x'));
    const error = await rejection(s.result);
    assert.equal(error.code, 'protocol_gap');
    const parts = [];
    await assert.rejects(async () => {
      for await (const part of s.parts()) parts.push(part);
    }, (e) => e === error);
    assert.deepEqual(parts, [{ type: 'reasoning', text: 'a', seq: 1 }]);
    await assert.rejects(collectAll(s), (e) => e === error);
    assert.deepEqual(socket.sent.at(-1), { type: 'cancel', id: 's1' });
    client.close();
  });

  test('a dropped socket mid-call: resumed from the last part, the replayed backlog merged; every part once', async () => {
    const { client, fake } = await scripted({ reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
    const key = 'k'.repeat(32);
    const s = client.stream({ id: 'a', prompt: 'hi', tools: [{ name: 'get_weather' }], reasoning: {} });
    const s0 = fake.sockets[0];
    s0.serverSend(wire.ack('a', key));
    s0.serverSend(wire.reasoning('a', 1, 'thinking'));
    s0.serverSend(wire.callStart('a', 2, 'c1', 'get_weather'));
    s0.serverSend(wire.callDelta('a', 3, 'c1', '{"ci'));
    s0.serverClose(1006);
    await waitFor(() => fake.sockets.length === 2, 1000, 'a reconnect');
    const s1 = fake.sockets[1];
    s1.serverOpen(READY);
    assert.deepEqual(s1.sent[0], { type: 'resume', key, after_seq: 3, id: 'a' });
    s1.serverSend(wire.callDelta('a', 6, 'c1', 'ty": "Oslo"}', 4)); // generated while away: merged
    s1.serverSend({ type: 'pong', ts: 'tokenwire:resumed' });
    s1.serverSend(wire.callEnd('a', 7, 'c1', 'get_weather', { city: 'Oslo' }));
    s1.serverSend(wire.done('a', 8, '', { finish_reason: 'tool_calls', tool_calls: [{ call_id: 'c1', name: 'get_weather', arguments: { city: 'Oslo' } }], reasoning: 'thinking' }));
    const done = await s.result;
    assert.equal(done.finish_reason, 'tool_calls');
    assert.deepEqual(
      (await collectAll(s.parts())).map((p) => [p.type, p.seq, p.fromSeq]),
      [['reasoning', 1, undefined], ['tool-call-start', 2, undefined], ['tool-call-delta', 3, undefined], ['tool-call-delta', 6, 4], ['tool-call-end', 7, undefined]],
    );
    assert.equal(s.toolCalls[0].argumentsText, '{"city": "Oslo"}');
    client.close();
  });

  test('over SSE: the same parts from the event stream', async () => {
    const events = [wire.ack('x', 'k'.repeat(32)), ...THINK_THEN_CALL.map((e) => ({ ...e, id: 'x' }))];
    const body = events.map((e) => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('');
    const requests = [];
    const fetch = async (url, init) => {
      requests.push({ url, body: JSON.parse(init.body) });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    };
    const client = new TokenwireClient('http://gateway.test', { transport: 'sse', fetch });
    const s = client.stream({ id: 'x', prompt: 'hi', tools: [{ name: 'get_weather' }], reasoning: {} });
    const done = await s.result;
    assert.equal(requests[0].url, 'http://gateway.test/v1/streams');
    assert.deepEqual(requests[0].body, { id: 'x', prompt: 'hi', tools: [{ name: 'get_weather' }], reasoning: {} });
    assert.equal(done.provider_state, 'sig-1');
    assert.deepEqual((await collectAll(s.parts())).map((p) => p.type), [
      'reasoning', 'reasoning', 'text', 'tool-call-start', 'tool-call-delta', 'tool-call-delta', 'tool-call-end',
    ]);
    assert.equal(s.reasoning, 'The user wants the weather.');
    client.close();
  });
});

describe('partial objects', () => {
  const SCHEMA = { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array' }, n: { type: 'number' } } };
  const PIECES = ['{"name": "Ad', 'a \\u00', 'e9", "ta', 'gs": ["x', '", "y"], "n": 1', '2.5', '}'];
  const TEXT = PIECES.join('');

  test('a json_schema stream: a snapshot for each change, then done.object; a late reader gets only the newest', async () => {
    const { client, socket } = await scripted();
    const seen = [];
    const s = client.stream(
      { prompt: 'a person', response_format: { type: 'json_schema', name: 'person', schema: SCHEMA } },
      { onPartialObject: (value, stream) => seen.push([JSON.stringify(value), stream.partialObject === value]) },
    );
    const early = s.partialObjects();
    socket.serverSend(wire.ack('s1'));
    PIECES.forEach((piece, i) => socket.serverSend(wire.chunk('s1', i + 1, piece)));
    assert.deepEqual(seen.map(([json]) => json), [
      '{"name":"Ad"}',
      '{"name":"Ada "}', // the cut escape waits
      '{"name":"Ada é"}', // the key "ta… waits for its value
      '{"name":"Ada é","tags":["x"]}',
      '{"name":"Ada é","tags":["x","y"],"n":1}',
      '{"name":"Ada é","tags":["x","y"],"n":12.5}',
    ]); // the closing brace changes nothing: no snapshot
    assert.ok(seen.every(([, same]) => same));
    const late = s.partialObjects();
    assert.deepEqual(await late.next(), { value: { name: 'Ada é', tags: ['x', 'y'], n: 12.5 }, done: false });
    socket.serverSend(wire.done('s1', PIECES.length + 1, TEXT, { object: { name: 'Ada é', tags: ['x', 'y'], n: 12.5 } }));
    assert.deepEqual(await late.next(), { value: undefined, done: true });
    const first = await early.next(); // a slow reader skips to the newest
    assert.deepEqual(first.value, { name: 'Ada é', tags: ['x', 'y'], n: 12.5 });
    assert.equal((await early.next()).done, true);
    assert.equal(seen.length, 6); // done.object equals the last snapshot
    client.close();
  });

  test('done.object replaces the snapshot; with object_error the last snapshot stays', async () => {
    const { client, socket } = await scripted();
    const a = client.stream({ id: 'a', prompt: 'p', response_format: { type: 'json' } });
    socket.serverSend(wire.ack('a'));
    socket.serverSend(wire.chunk('a', 1, ' [1, 2'));
    assert.deepEqual(a.partialObject, [1, 2]);
    socket.serverSend(wire.done('a', 2, ' [1, 2', { object_error: 'the output is not valid JSON: truncated' }));
    assert.equal((await a.result).object_error, 'the output is not valid JSON: truncated');
    assert.deepEqual(a.partialObject, [1, 2]);
    const b = client.stream({ id: 'b', prompt: 'p', response_format: { type: 'json' } });
    socket.serverSend(wire.ack('b'));
    socket.serverSend(wire.chunk('b', 1, 'nul'));
    assert.equal(b.partialObject, null);
    socket.serverSend(wire.done('b', 2, 'null', { object: null }));
    await b.result;
    assert.equal(b.partialObject, null);
    client.close();
  });
});

describe('imagePart', () => {
  test('a data: URL of the bytes, checked for format and size before reading', async () => {
    const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 256);
    const part = await imagePart(new Blob([bytes], { type: 'image/PNG' }));
    assert.deepEqual(part, { type: 'image', url: `data:image/png;base64,${Buffer.from(bytes).toString('base64')}` });
    assert.equal(MAX_IMAGE_BYTES, 5 * 1024 * 1024);
    const exact = await imagePart(new Blob([new Uint8Array(MAX_IMAGE_BYTES)], { type: 'image/webp' }));
    assert.equal(Buffer.from(exact.url.slice('data:image/webp;base64,'.length), 'base64').length, MAX_IMAGE_BYTES);
    await assert.rejects(imagePart(new Blob([new Uint8Array(MAX_IMAGE_BYTES + 1)], { type: 'image/jpeg' })), (e) => e instanceof RangeError && /5242881 bytes/.test(e.message));
    await assert.rejects(imagePart(new Blob(['<svg/>'], { type: 'image/svg+xml' })), (e) => e instanceof TypeError && /PNG, JPEG, GIF or WebP/.test(e.message));
  });
});
