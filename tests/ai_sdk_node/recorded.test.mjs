// @ai-sdk/openai's default provider (the Responses API) through `streamText` against a live
// gateway whose model TOKENWIRE_MODEL is served by a fake upstream replaying a recording. Run by
// tests/e2e/test_node_recorded.py, which passes TOKENWIRE_URL, TOKENWIRE_TOKEN and the text the
// recording holds as TOKENWIRE_EXPECTED_TEXT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const { TOKENWIRE_URL: BASE, TOKENWIRE_TOKEN: TOKEN, TOKENWIRE_MODEL: MODEL } = process.env;
const EXPECTED = process.env.TOKENWIRE_EXPECTED_TEXT;
assert.ok(BASE && TOKEN && MODEL && EXPECTED, 'TOKENWIRE_URL, _TOKEN, _MODEL and _EXPECTED_TEXT must be set');
const openai = createOpenAI({ baseURL: `${BASE}/v1`, apiKey: TOKEN });

test('streamText assembles the recorded answer', async () => {
  const result = streamText({ model: openai(MODEL), prompt: 'Go on.' });
  const deltas = [];
  for await (const delta of result.textStream) deltas.push(delta);
  assert.equal(deltas.join(''), EXPECTED);
  assert.equal(await result.text, EXPECTED);
});
