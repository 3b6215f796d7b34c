// Drives the gateway's Anthropic Messages API with the official `@anthropic-ai/sdk` npm package,
// the way an app does after changing only `baseURL`. Run by tests/e2e/test_anthropic_compat.py
// against a live gateway (TOKENWIRE_BASE_URL, TOKENWIRE_TOKEN) with its offline rulebased
// provider. Prints one JSON object with what it saw.
import Anthropic from "@anthropic-ai/sdk";

const baseURL = process.env.TOKENWIRE_BASE_URL;
const apiKey = process.env.TOKENWIRE_TOKEN;
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const weather = {
  name: "get_weather",
  description: "The weather now in a city.",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

async function errorOf(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return { name: e.constructor.name, status: e.status ?? null, type: e.error?.error?.type ?? null };
  }
}

// messages.stream: text events, then the assembled message
const textStream = client.messages.stream({
  model: "rulebased",
  max_tokens: 30,
  system: "Be brief.",
  messages: [{ role: "user", content: "Say hello" }],
});
const pieces = [];
const types = [];
textStream.on("text", (text) => pieces.push(text));
textStream.on("streamEvent", (event) => types.push(event.type));
const text = await textStream.finalMessage();

// a tool-use loop: tool_use -> run it here -> tool_result -> the final answer
const ask = [{ role: "user", content: "Use get_weather for Paris" }];
const callTurn = await client.messages.stream({ model: "rulebased", max_tokens: 300, tools: [weather], messages: ask }).finalMessage();
const use = callTurn.content.find((block) => block.type === "tool_use");
const result = JSON.stringify({ city: use.input.city, temp_c: 4 });
ask.push({ role: "assistant", content: callTurn.content });
ask.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: result }] });
const answer = await client.messages.stream({ model: "rulebased", max_tokens: 300, tools: [weather], messages: ask }).finalMessage();

const out = {
  stream: { text: pieces.join(""), pieces: pieces.length, types: [...new Set(types)], message: text },
  tool: { stop: callTurn.stop_reason, name: use.name, input: use.input, id: use.id },
  answer: { stop: answer.stop_reason, text: answer.content.map((b) => b.text ?? "").join("") },
  notFound: await errorOf(() => client.messages.create({ model: "nope/x", max_tokens: 5, messages: ask })),
  badRequest: await errorOf(() => client.messages.create({ model: "rulebased", max_tokens: 0, messages: ask })),
  auth: await errorOf(() =>
    new Anthropic({ baseURL, apiKey: "wrong", maxRetries: 0 }).messages.create({ model: "rulebased", max_tokens: 5, messages: ask }),
  ),
};
console.log(JSON.stringify(out));
