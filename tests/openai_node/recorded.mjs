// Streams one answer through the gateway with an official Node SDK (TOKENWIRE_SDK: "openai" for
// the `openai` package's Responses API, "anthropic" for `@anthropic-ai/sdk`'s Messages API) for the
// model TOKENWIRE_MODEL, whose provider is a fake upstream replaying a recording. Run by
// tests/e2e/test_node_recorded.py, which passes the text the recording holds as
// TOKENWIRE_EXPECTED_TEXT and its tool calls as TOKENWIRE_EXPECTED_CALLS (JSON [[name, input]]);
// exits non-zero when the SDK assembled anything else.
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const { TOKENWIRE_BASE_URL: baseURL, TOKENWIRE_TOKEN: apiKey, TOKENWIRE_MODEL: model } = process.env;
const expected = process.env.TOKENWIRE_EXPECTED_TEXT;
const calls = JSON.parse(process.env.TOKENWIRE_EXPECTED_CALLS ?? "[]");
const names = [...new Set(calls.map(([name]) => name))];
const input = "Go on.";

async function viaOpenAI() {
  const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
  const tools = names.map((name) => ({ type: "function", name, parameters: { type: "object" } }));
  const final = await client.responses.stream({ model, input, ...(tools.length ? { tools } : {}) }).finalResponse();
  const got = final.output.filter((item) => item.type === "function_call");
  return [final.output_text, got.map((item) => [item.name, JSON.parse(item.arguments)])];
}

async function viaAnthropic() {
  const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
  const tools = names.map((name) => ({ name, input_schema: { type: "object" } }));
  const messages = [{ role: "user", content: input }];
  const stream = client.messages.stream({ model, max_tokens: 300, messages, ...(tools.length ? { tools } : {}) });
  const final = await stream.finalMessage();
  const text = final.content.filter((block) => block.type === "text").map((block) => block.text).join("");
  const got = final.content.filter((block) => block.type === "tool_use");
  return [text, got.map((block) => [block.name, block.input])];
}

const [text, got] = process.env.TOKENWIRE_SDK === "anthropic" ? await viaAnthropic() : await viaOpenAI();
assert.equal(text, expected);
assert.deepEqual(got, calls);
console.log(JSON.stringify({ text, calls: got }));
