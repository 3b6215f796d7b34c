// @ai-sdk/openai's default provider `openai(model)`, which speaks the Responses API, through
// `streamText` against a live gateway's POST /v1/responses (the rulebased provider, offline).
// Run by tests/e2e/test_responses_node.py, which passes TOKENWIRE_URL and TOKENWIRE_TOKEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamText, tool, jsonSchema, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const BASE = process.env.TOKENWIRE_URL;
const TOKEN = process.env.TOKENWIRE_TOKEN;
assert.ok(BASE && TOKEN, 'TOKENWIRE_URL and TOKENWIRE_TOKEN must be set');
const sent = []; // the request bodies, as the provider wrote them
const openai = createOpenAI({
  baseURL: `${BASE}/v1`,
  apiKey: TOKEN,
  fetch: async (url, options) => {
    sent.push(JSON.parse(options.body));
    return fetch(url, options);
  },
});

test('streamText with openai(model) streams text over /v1/responses', async () => {
  const result = streamText({ model: openai('rulebased'), prompt: 'Tell me about tea', maxOutputTokens: 40 });
  const deltas = [];
  for await (const delta of result.textStream) deltas.push(delta);
  const text = await result.text;
  assert.ok(deltas.length > 1);
  assert.equal(deltas.join(''), text);
  assert.ok(text.length > 0);
  const usage = await result.usage;
  assert.ok(usage.outputTokens > 0);
  assert.ok(['stop', 'length'].includes(await result.finishReason));
});

test('streamText runs a tool and answers with its result', async () => {
  const calls = [];
  const result = streamText({
    model: openai('rulebased'),
    prompt: 'Use get_weather for Paris',
    tools: {
      get_weather: tool({
        description: 'The weather now in a city.',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
        execute: async ({ city }) => {
          calls.push(city);
          return { city, temp_c: 4 };
        },
      }),
    },
    stopWhen: stepCountIs(3),
  });
  const text = await result.text;
  const steps = await result.steps;
  assert.deepEqual(calls, ['Paris']);
  assert.equal(steps[0].finishReason, 'tool-calls');
  assert.equal(steps[0].toolCalls[0].toolName, 'get_weather');
  assert.match(text, /get_weather tool returned: \{"city":\s?"Paris",\s?"temp_c":\s?4\}/);
});

test('a second turn carries the first with store: false; stored item references are refused', async () => {
  const first = streamText({ model: openai('rulebased'), prompt: 'Tell me about tea', maxOutputTokens: 20 });
  const firstText = await first.text;
  const history = [{ role: 'user', content: 'Tell me about tea' }, ...(await first.response).messages];
  const followUp = [...history, { role: 'user', content: 'And coffee?' }];

  const second = streamText({
    model: openai('rulebased'),
    messages: followUp,
    providerOptions: { openai: { store: false } },
  });
  assert.ok((await second.text).length > 0);
  const body = sent.at(-1);
  assert.equal(body.store, false);
  assert.deepEqual(body.input[1], { role: 'assistant', content: firstText });

  const errors = [];
  const stored = streamText({ model: openai('rulebased'), messages: followUp, onError: ({ error }) => errors.push(error) });
  await stored.consumeStream();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].statusCode, 400);
  assert.match(errors[0].message, /item_reference.*store = false/);
});
