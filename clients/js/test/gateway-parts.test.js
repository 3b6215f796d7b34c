// Protocol v1.1 against a real gateway and its offline `rulebased` provider: a tool loop over
// WebSocket and SSE, partial objects of JSON output, and parts resumed after a dropped
// connection (a TCP proxy cuts it; the gateway's stream runs on).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenwireClient } from '../src/index.js';
import { startGateway } from './gateway.js';
import { startProxy } from './proxy.js';
import { countingWebSocket, WebSocket } from './support.js';

/** @type {import('./gateway.js').Gateway} */
let gw;
/** @type {import('./gateway.js').Gateway} chunks every 30 ms: time to drop a connection mid-stream */
let slow;
/** @type {Array<{close(): unknown}>} */
const closers = [];

before(async () => {
  [gw, slow] = await Promise.all([startGateway(), startGateway({ config: { providers: { rulebased: { chunk_delay_ms: 30 } } } })]);
});

after(async () => {
  for (const c of closers) await c.close();
  await Promise.all([gw?.stop(), slow?.stop()]);
});

/** @param {ConstructorParameters<typeof TokenwireClient>} args */
const client = (...args) => {
  const c = new TokenwireClient(...args);
  closers.push(c);
  return c;
};

const collectAll = async (iterator) => {
  const out = [];
  for await (const item of iterator) out.push(item);
  return out;
};

/** Each seq from 1 to the terminal one's predecessor, exactly once (a merged part covers fromSeq..seq). */
function assertEverySeqOnce(parts, done) {
  const seen = [];
  for (const part of parts) for (let seq = part.fromSeq ?? part.seq; seq <= part.seq; seq++) seen.push(seq);
  assert.deepEqual(seen, Array.from({ length: done.seq - 1 }, (_, i) => i + 1));
}

const CALCULATOR = {
  description: 'Evaluates an arithmetic expression',
  parameters: { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] },
  execute: ({ expression }) => {
    const [a, b] = expression.split('*').map(Number);
    return a * b;
  },
};
const LOOP = { provider: 'rulebased', prompt: 'Use the calculator to compute 6*7', reasoning: { effort: 'low' }, tools: { calculator: CALCULATOR } };

describe('tool loop against rulebased', () => {
  test('the call runs here and the answer quotes its result; both steps on one socket', async () => {
    const counting = countingWebSocket();
    const loop = client(gw.url, { WebSocket: counting.WebSocket }).stream(LOOP);
    const parts = await collectAll(loop.parts());
    const done = await loop.result;

    assert.equal(counting.record.count, 1);
    const [first, second] = counting.record.sent;
    assert.deepEqual([first.type, second.type, counting.record.sent.length], ['start', 'start', 2]);
    assert.deepEqual(first.tools, [{ name: 'calculator', description: CALCULATOR.description, parameters: CALCULATOR.parameters }]);
    const [step0, step1] = done.steps;
    assert.equal(step0.finish_reason, 'tool_calls');
    assert.deepEqual(step0.tool_calls.map((c) => [c.name, c.arguments]), [['calculator', { expression: '6*7' }]]);
    assert.deepEqual(second.messages.slice(1), [
      { role: 'assistant', tool_calls: step0.tool_calls }, // verbatim
      { role: 'tool', tool_call_id: step0.tool_calls[0].call_id, content: '42' },
    ]);
    assert.equal(step1.finish_reason, 'stop');
    assert.equal(done.content, 'The calculator tool returned: 42');
    assert.equal(loop.text, 'The calculator tool returned: 42');
    assert.deepEqual(done.messages.at(-1), { role: 'assistant', content: 'The calculator tool returned: 42' });

    // one logical stream: step 0 reasons then calls, the page answers, step 1 reasons then says
    const kinds = parts.map((p) => `${p.type}${'step' in p ? p.step : ''}`).filter((k, i, all) => k !== all[i - 1]);
    assert.deepEqual(kinds, [
      'step-start0', 'reasoning0', 'tool-call-start0', 'tool-call-delta0', 'tool-call-end0', 'step-end0', 'tool-result0',
      'step-start1', 'reasoning1', 'text1', 'step-end1',
    ]);
    assert.deepEqual(done.totalUsage.reasoning_tokens, step0.usage.reasoning_tokens + step1.usage.reasoning_tokens);
    assert.ok(loop.reasoning.startsWith(step0.reasoning));
  });

  test('over SSE: the same steps and the same answer', async () => {
    const loop = client(gw.url, { transport: 'sse' }).stream(LOOP);
    const done = await loop.result;
    const reference = await client(gw.url, { WebSocket }).stream(LOOP).result;
    assert.deepEqual(done.messages, reference.messages);
    assert.deepEqual(done.steps.map((d) => d.reasoning), reference.steps.map((d) => d.reasoning));
    assert.match(loop.steps[1].id, /^s1-[0-9a-f]{10}\.1$/);
  });
});

test('a json_schema stream: partial objects that grow into done.object', async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, tags: { type: 'array', items: { type: 'string' } } },
    required: ['name', 'age'],
  };
  const snapshots = [];
  const s = client(gw.url, { WebSocket }).stream(
    { provider: 'rulebased', prompt: 'A person named Ada, aged 36', response_format: { type: 'json_schema', name: 'person', schema } },
    { onPartialObject: (value) => snapshots.push(structuredClone(value)) },
  );
  const done = await s.result;
  assert.equal(done.object.name, 'Ada');
  assert.equal(done.object.age, 36);
  assert.deepEqual(s.partialObject, done.object);
  assert.deepEqual(snapshots.at(-1), done.object);
  assert.ok(snapshots.length >= 4, `${snapshots.length} snapshots`);
  for (const snapshot of snapshots) for (const key of Object.keys(snapshot)) assert.ok(key in done.object, key);
  assert.deepEqual(JSON.parse(s.text), done.object);
});

test('a dropped connection mid-parts: resumed; every part once, as on a connection that never dropped', async () => {
  const proxy = await startProxy(slow.port);
  closers.push(proxy);
  const request = {
    provider: 'rulebased',
    prompt: 'Use the calculator to compute 12*12, carefully',
    reasoning: { effort: 'high' },
    tools: [{ name: 'calculator', parameters: CALCULATOR.parameters }],
  };
  const s = client(proxy.url, { WebSocket, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } }).stream(request);
  for await (const part of s.parts()) {
    if (part.type === 'reasoning') {
      proxy.drop(); // during the reasoning, before the call
      break;
    }
  }
  const done = await s.result;
  assert.equal(proxy.accepted, 2);
  const parts = await collectAll(s.parts());
  assertEverySeqOnce(parts, done);
  const reference = client(slow.url, { WebSocket }).stream(request);
  const expected = await reference.result;
  assert.equal(done.finish_reason, 'tool_calls');
  assert.deepEqual(done.tool_calls, expected.tool_calls);
  assert.equal(s.reasoning, expected.reasoning);
  assert.equal(s.reasoning, done.reasoning);
  assert.deepEqual(s.toolCalls, reference.toolCalls);
});
