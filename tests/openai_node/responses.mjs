// Drives the gateway's Responses API (POST /v1/responses) with the official `openai` npm package:
// a streamed create, a plain create and a refused built-in tool. Run by
// tests/e2e/test_responses_node.py against a live gateway (TOKENWIRE_BASE_URL, TOKENWIRE_TOKEN)
// with the rulebased provider. Prints one JSON object with what it saw.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.TOKENWIRE_BASE_URL,
  apiKey: process.env.TOKENWIRE_TOKEN,
  maxRetries: 0,
});
const out = {};

const stream = await client.responses.create({ model: "rulebased", input: "Say hello", stream: true });
const events = [];
for await (const event of stream) events.push(event);
out.stream = {
  types: events.map((e) => e.type),
  sequence: events.map((e) => e.sequence_number),
  text: events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""),
  final: events.at(-1).response,
};

const whole = await client.responses.create({ model: "rulebased", input: "Say hello" });
out.whole = { status: whole.status, outputText: whole.output_text, usage: whole.usage };

try {
  await client.responses.create({ model: "rulebased", input: "hi", tools: [{ type: "web_search" }] });
  out.refused = null;
} catch (e) {
  out.refused = { name: e.constructor.name, status: e.status, param: e.param, message: e.message };
}
console.log(JSON.stringify(out));
