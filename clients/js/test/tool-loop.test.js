// The client-side tool loop against a scripted socket that answers each `start` as the gateway
// would: what each step sends, how calls run (concurrently, errors as tool messages), when the
// loop stops, cancelling, and the one logical stream the caller sees.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_MAX_STEPS, ToolLoopStream } from '../src/index.js';
import { answerStarts, numbered, rejection, scriptedClient, tick, waitFor, wire } from './support.js';

const CALC = { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] };
const USAGE = (p, c) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c, estimated: false });

/** A step that calls tools: [{call_id, name, arguments}] each streamed as start, one delta, end. */
function callingStep(id, calls, { text = '', fields = {} } = {}) {
  const parts = [];
  if (text) parts.push((i, seq) => wire.chunk(i, seq, text));
  calls.forEach((call, index) => {
    parts.push((i, seq) => wire.callStart(i, seq, call.call_id, call.name, index));
    parts.push((i, seq) => wire.callDelta(i, seq, call.call_id, JSON.stringify(call.arguments ?? {})));
    parts.push((i, seq) => wire.callEnd(i, seq, call.call_id, call.name, call.arguments, call.arguments_error));
  });
  return numbered(id, parts, text, { finish_reason: 'tool_calls', tool_calls: calls, ...fields });
}

const answeringStep = (id, text, fields = {}) => numbered(id, [(i, seq) => wire.chunk(i, seq, text)], text, fields);

/** A client on a scripted socket whose `start`s are answered by `respond(start, n)`. */
async function scripted(respond) {
  const { client, socket, fake } = await scriptedClient();
  answerStarts(socket, respond);
  const starts = () => socket.sent.filter((m) => m.type === 'start');
  return { client, socket, fake, starts };
}

describe('tool loop', () => {
  test('two steps on one socket: the call runs in the page, its result goes back, the answer streams on', async () => {
    const call = { call_id: 'call_1', name: 'calculator', arguments: { expression: '6*7' } };
    const { client, fake, starts } = await scripted((start, n) =>
      n === 0
        ? callingStep(start.id, [call], {
            text: 'Let me compute.',
            fields: { provider_state: '{"p":"sig"}', usage: USAGE(10, 5), reasoning: 'thought' },
          })
        : answeringStep(start.id, 'It is 42.', { usage: { ...USAGE(20, 4), reasoning_tokens: 2 } }),
    );
    const executed = [];
    const events = [];
    const loop = client.stream(
      {
        messages: [{ role: 'user', content: 'What is 6*7? Use the calculator.' }],
        provider: 'rulebased',
        tools: {
          calculator: {
            description: 'Evaluates an arithmetic expression',
            parameters: CALC,
            execute: (args, context) => {
              executed.push([args, context.callId, context.step, context.messages.length, context.signal.aborted]);
              return 42;
            },
          },
        },
      },
      {
        onStart: (ack) => events.push(['start', ack.id]),
        onStepStart: (part) => events.push(['step-start', part.step, part.id]),
        onStepEnd: (part) => events.push(['step-end', part.step, part.done.finish_reason]),
        onToolResult: (part) => events.push(['tool-result', part.callId, part.output]),
        onChunk: (chunk) => events.push(['chunk', chunk.content]),
        onDone: (done, l) => events.push(['done', done.finish_reason, l === loop]),
      },
    );
    assert.ok(loop instanceof ToolLoopStream);
    assert.equal(loop.status, 'queued');
    const done = await loop.result;

    const [first, second] = starts();
    assert.deepEqual(first, {
      type: 'start',
      id: 's1',
      provider: 'rulebased',
      messages: [{ role: 'user', content: 'What is 6*7? Use the calculator.' }],
      tools: [{ name: 'calculator', description: 'Evaluates an arithmetic expression', parameters: CALC }],
    });
    assert.deepEqual(second, {
      type: 'start',
      id: 's1.1',
      provider: 'rulebased',
      messages: [
        { role: 'user', content: 'What is 6*7? Use the calculator.' },
        { role: 'assistant', content: 'Let me compute.', tool_calls: [call], provider_state: '{"p":"sig"}' },
        { role: 'tool', tool_call_id: 'call_1', content: '42' },
      ],
      tools: first.tools,
    });
    assert.equal(fake.sockets.length, 1);
    assert.deepEqual(executed, [[{ expression: '6*7' }, 'call_1', 0, 2, false]]);
    assert.deepEqual(events, [
      ['step-start', 0, 's1'], ['start', 's1'], ['chunk', 'Let me compute.'], ['step-end', 0, 'tool_calls'],
      ['tool-result', 'call_1', 42],
      ['step-start', 1, 's1.1'], ['chunk', 'It is 42.'], ['step-end', 1, 'stop'],
      ['done', 'stop', true],
    ]);
    assert.equal(done.finish_reason, 'stop');
    assert.equal(done.content, 'It is 42.');
    assert.deepEqual(done.steps.map((d) => [d.id, d.finish_reason]), [['s1', 'tool_calls'], ['s1.1', 'stop']]);
    assert.deepEqual(done.totalUsage, { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39, estimated: false, reasoning_tokens: 2 });
    assert.deepEqual(done.messages, [...second.messages, { role: 'assistant', content: 'It is 42.' }]);
    assert.deepEqual(loop.messages, done.messages);
    assert.equal(loop.text, 'Let me compute.It is 42.');
    assert.equal(loop.reasoning, ''); // reasoning is what was streamed
    assert.equal(loop.status, 'done');
    assert.equal(loop.id, 's1');
    assert.deepEqual(loop.steps.map((s) => s.id), ['s1', 's1.1']);
    assert.equal(loop.stats.tokens, 9);
    assert.equal(loop.stats.chunks, 2);
    client.close();
  });

  test('one logical stream: parts() across steps with boundaries and results; the chunk iterator across steps', async () => {
    const call = { call_id: 'c', name: 'clock', arguments: {} };
    const { client } = await scripted((start, n) =>
      n === 0
        ? numbered(start.id, [(i, s) => wire.reasoning(i, s, 'hm'), (i, s) => wire.callStart(i, s, 'c', 'clock'), (i, s) => wire.callDelta(i, s, 'c', '{}'), (i, s) => wire.callEnd(i, s, 'c', 'clock', {})], '', { finish_reason: 'tool_calls', tool_calls: [call], reasoning: 'hm' })
        : answeringStep(start.id, 'Noon.'),
    );
    const loop = client.stream({ prompt: 'time?', reasoning: {}, tools: { clock: { execute: () => '12:00' } } });
    const parts = [];
    for await (const part of loop.parts()) parts.push(part);
    assert.deepEqual(parts, [
      { type: 'step-start', step: 0, id: 's1' },
      { type: 'reasoning', text: 'hm', seq: 1, step: 0 },
      { type: 'tool-call-start', callId: 'c', name: 'clock', index: 0, seq: 2, step: 0 },
      { type: 'tool-call-delta', callId: 'c', argumentsDelta: '{}', seq: 3, step: 0 },
      { type: 'tool-call-end', callId: 'c', name: 'clock', arguments: {}, seq: 4, step: 0 },
      { type: 'step-end', step: 0, done: parts[5].done },
      { type: 'tool-result', step: 0, callId: 'c', name: 'clock', output: '12:00', content: '12:00' },
      { type: 'step-start', step: 1, id: 's1.1' },
      { type: 'text', text: 'Noon.', seq: 1, step: 1 },
      { type: 'step-end', step: 1, done: parts[9].done },
    ]);
    assert.equal(parts[5].done.finish_reason, 'tool_calls');
    const chunks = [];
    for await (const chunk of loop) chunks.push(chunk.content);
    assert.deepEqual(chunks, ['Noon.']);
    assert.equal(loop.reasoning, 'hm');
    const [, second] = (await loop.result).steps;
    assert.equal(second.content, 'Noon.');
    // a prompt becomes the conversation's user message
    assert.deepEqual(loop.messages[0], { role: 'user', content: 'time?' });
    client.close();
  });

  test('parallel calls run concurrently; tool messages follow the order of the calls, results arrive as they finish', async () => {
    const calls = [
      { call_id: 'a', name: 'slow', arguments: { n: 1 } },
      { call_id: 'b', name: 'fast', arguments: { n: 2 } },
    ];
    const { client, starts } = await scripted((start, n) => (n === 0 ? callingStep(start.id, calls) : answeringStep(start.id, 'ok')));
    let releaseSlow;
    const slowGate = new Promise((r) => (releaseSlow = r));
    const order = [];
    const loop = client.stream(
      {
        prompt: 'both',
        tools: {
          // run one after the other, `slow` would wait for `fast` forever
          slow: { execute: async () => { order.push('slow started'); await slowGate; return { slow: true }; } },
          fast: { execute: async () => { order.push('fast started'); return 'fast'; } },
        },
      },
      {
        onToolResult: (part) => {
          order.push(`result ${part.callId}`);
          if (part.callId === 'b') releaseSlow();
        },
      },
    );
    await loop.result;
    assert.deepEqual(order, ['slow started', 'fast started', 'result b', 'result a']);
    assert.deepEqual(starts()[1].messages.slice(-2), [
      { role: 'tool', tool_call_id: 'a', content: '{"slow":true}' },
      { role: 'tool', tool_call_id: 'b', content: 'fast' },
    ]);
    client.close();
  });

  test('errors become tool messages: a throwing execute, invalid arguments (not run), an unknown tool', async () => {
    const calls = [
      { call_id: 'x', name: 'divide', arguments: { a: 1, b: 0 } },
      { call_id: 'y', name: 'divide', arguments: null, arguments_error: 'the arguments are not valid JSON: truncated' },
      { call_id: 'z', name: 'nope', arguments: {} },
    ];
    const { client, starts } = await scripted((start, n) => (n === 0 ? callingStep(start.id, calls) : answeringStep(start.id, 'sorry')));
    const ran = [];
    const results = [];
    const loop = client.stream(
      {
        prompt: 'divide',
        tools: {
          divide: {
            execute: ({ a, b }) => {
              ran.push([a, b]);
              if (b === 0) throw new RangeError('division by zero');
              return a / b;
            },
          },
        },
      },
      { onToolResult: (part) => results.push(part) },
    );
    assert.equal((await loop.result).finish_reason, 'stop');
    assert.deepEqual(ran, [[1, 0]]);
    assert.deepEqual(starts()[1].messages.slice(-3), [
      { role: 'tool', tool_call_id: 'x', content: '{"error":"division by zero"}' },
      { role: 'tool', tool_call_id: 'y', content: '{"error":"invalid arguments: the arguments are not valid JSON: truncated"}' },
      { role: 'tool', tool_call_id: 'z', content: '{"error":"unknown tool: nope"}' },
    ]);
    assert.deepEqual(results.map((r) => [r.callId, r.error, 'output' in r]).sort(), [
      ['x', 'division by zero', false],
      ['y', 'invalid arguments: the arguments are not valid JSON: truncated', false],
      ['z', 'unknown tool: nope', false],
    ]);
    client.close();
  });

  test(`it stops at maxSteps (default ${DEFAULT_MAX_STEPS}): the last step's calls are left to the caller`, async () => {
    const call = { call_id: 'c', name: 'again', arguments: {} };
    const { client, starts } = await scripted((start) => callingStep(start.id, [call]));
    let runs = 0;
    const tools = { again: { execute: () => ++runs } };
    const done = await client.stream({ prompt: 'loop', tools }).result;
    assert.equal(starts().length, DEFAULT_MAX_STEPS);
    assert.equal(runs, DEFAULT_MAX_STEPS - 1);
    assert.equal(done.finish_reason, 'tool_calls');
    assert.deepEqual(done.tool_calls, [call]);
    assert.equal(done.steps.length, DEFAULT_MAX_STEPS);
    assert.deepEqual(done.messages.at(-1), { role: 'assistant', tool_calls: [call] }); // answer its calls yourself

    const one = await client.stream({ prompt: 'once', tools, maxSteps: 1 }).result;
    assert.equal(one.steps.length, 1);
    assert.equal(runs, DEFAULT_MAX_STEPS - 1);
    assert.throws(() => client.stream({ prompt: 'x', tools, maxSteps: 0 }), TypeError);
    assert.throws(() => client.stream({ brief: { topic: 'x' }, tools }), TypeError);
    assert.throws(() => client.stream({ tools }), /either messages or a prompt/);
    assert.throws(() => client.stream({ prompt: 'x', tools: { t: { execute: 'no' } } }), TypeError);
    client.close();
  });

  test('a tool without execute ends the loop with the calls for the caller', async () => {
    const calls = [
      { call_id: 'a', name: 'confirm', arguments: {} },
      { call_id: 'b', name: 'lookup', arguments: {} },
    ];
    const { client, starts } = await scripted((start) => callingStep(start.id, calls));
    let looked = 0;
    const done = await client.stream({ prompt: 'p', tools: { confirm: { description: 'asks the user' }, lookup: { execute: () => ++looked } } }).result;
    assert.equal(starts().length, 1);
    assert.deepEqual(starts()[0].tools, [{ name: 'confirm', description: 'asks the user' }, { name: 'lookup' }]);
    assert.equal(looked, 0);
    assert.equal(done.finish_reason, 'tool_calls');
    client.close();
  });

  test('a forced tool_choice applies to the first step only', async () => {
    const call = { call_id: 'c', name: 't', arguments: {} };
    const { client, starts } = await scripted((start, n) => (n === 0 ? callingStep(start.id, [call]) : answeringStep(start.id, 'done')));
    await client.stream({ prompt: 'p', tool_choice: { name: 't' }, tools: { t: { execute: () => 1 } } }).result;
    assert.deepEqual(starts().map((s) => s.tool_choice), [{ name: 't' }, 'auto']);
    client.close();
  });

  test('cancel() during a step cancels that step; during the tools, aborts their signal and starts nothing more', async () => {
    const call = { call_id: 'c', name: 'wait', arguments: {} };
    // the gateway's answer to a cancel: the cancelled done
    const { client, socket, starts } = await scripted((start) => [wire.ack(start.id, 'k'.repeat(32)), wire.chunk(start.id, 1, 'Wor')]);
    const loop = client.stream({ prompt: 'p', tools: { wait: { execute: () => 1 } } });
    await waitFor(() => loop.text === 'Wor', 1000, 'the first chunk');
    loop.cancel();
    assert.deepEqual(socket.sent.at(-1), { type: 'cancel', id: 's1' });
    socket.serverSend(wire.done('s1', 2, 'Wor', { finish_reason: 'cancelled' }));
    const cancelled = await loop.result;
    assert.equal(cancelled.finish_reason, 'cancelled');
    assert.equal(loop.status, 'cancelled');
    assert.equal(cancelled.messages.length, 1);

    const second = await scripted((start) => callingStep(start.id, [call], { text: 'Waiting.' }));
    let signal;
    let started;
    const running = new Promise((r) => (started = r));
    const loop2 = second.client.stream({
      prompt: 'p',
      tools: { wait: { execute: (args, context) => { signal = context.signal; started(); return new Promise(() => {}); } } },
    });
    await running;
    assert.equal(loop2.status, 'streaming');
    loop2.cancel();
    assert.equal(signal.aborted, true);
    const done = await loop2.result;
    assert.equal(done.finish_reason, 'cancelled');
    assert.equal(done.content, 'Waiting.');
    assert.deepEqual(done.messages, [{ role: 'user', content: 'p' }]); // no half turn to continue from
    await tick(5);
    assert.equal(second.starts().length, 1);
    client.close();
    second.client.close();
  });

  test('an aborted signal: nothing is sent; a failed step fails the loop and its iterators', async () => {
    const { client, socket, starts } = await scripted((start) => [
      wire.ack(start.id),
      { type: 'error', id: start.id, seq: 1, code: 'upstream_unavailable', message: 'down', retryable: true },
    ]);
    const aborted = client.stream({ prompt: 'p', tools: { t: {} } }, { signal: AbortSignal.abort() });
    assert.equal((await aborted.result).finish_reason, 'cancelled');
    assert.equal(starts().length, 0);

    const errors = [];
    const loop = client.stream({ prompt: 'p', tools: { t: {} } }, { onError: (e) => errors.push(e.code) });
    const error = await rejection(loop.result);
    assert.equal(error.code, 'upstream_unavailable');
    assert.deepEqual(errors, ['upstream_unavailable']);
    assert.equal(loop.status, 'error');
    await assert.rejects(async () => {
      for await (const part of loop.parts()) assert.ok(part);
    }, (e) => e === error);
    assert.equal(socket.sent.filter((m) => m.type === 'start').length, 1);
    client.close();
  });
});
